"""How a worker fleet member runs: the requests topic, its consumer group, concurrency and
fencing. The connection and the state topic come from the store's settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from actionstate.client.kafka._settings import (
    ClientValue,
    KafkaConnection,
    TopicName,
    check_client_config,
)

__all__ = ["Fencing", "FleetSettings"]

Fencing = Literal["transactions", "none"]
Seconds = Annotated[float, Field(gt=0, le=86_400)]


class FleetSettings(BaseSettings):
    """Settings of ``Worker.run`` / ``actionstate worker``, from arguments, then the
    environment (``ACTIONSTATE_REQUESTS``, ``ACTIONSTATE_GROUP``, ...)."""

    model_config = SettingsConfigDict(env_prefix="ACTIONSTATE_", extra="forbid", frozen=True)

    requests: TopicName
    """The requests topic; created with the state topic's partition count when missing."""
    group: Annotated[str, Field(min_length=1, max_length=249)]
    """The consumer group of the fleet: its members share the requests' partitions."""
    max_in_flight: Annotated[int, Field(ge=1, le=10_000)] = 64
    """Requests taken from the topic and not yet finished, at most (different agent keys
    run concurrently; one key's requests run one at a time, in order)."""
    fencing: Fencing = "transactions"
    """``transactions``: the broker refuses writes of a worker that lost its partitions
    (a zombie). ``none``: at-least-once, a zombie's late write may win (see the README)."""
    dead_letter_topic: TopicName | None = None
    """Where bad requests go; ``<requests>.dead-letter`` when not set."""
    grace_s: Seconds = 10.0
    """How long a revocation or a shutdown lets running actions finish before dropping them
    (their journal stays; the next owner recovers them)."""
    commit_interval_s: Seconds = 0.2
    """How often finished requests' offsets are committed to the group."""
    progress_interval_s: Seconds = 10.0
    """How often a progress line is logged."""
    transactional_id_prefix: Annotated[str, Field(min_length=1, max_length=100)] = "actionstate"
    """With fencing, partition ``p`` of state topic ``T`` is owned through the transactional
    id ``<prefix>-T-p``: every worker of one state topic must use the same prefix."""

    client_config: dict[str, ClientValue] = Field(default_factory=dict)
    """librdkafka properties for the worker's group consumer and dead-letter producer, over
    the store's connection (``-X KEY=VALUE``), e.g. ``{"session.timeout.ms": 6000}``."""

    @field_validator("client_config")
    @classmethod
    def _no_reserved(cls, value: dict[str, ClientValue]) -> dict[str, ClientValue]:
        return check_client_config(value)

    @model_validator(mode="after")
    def _distinct_topics(self) -> FleetSettings:
        if self.dead_letter_topic == self.requests:
            raise ValueError("dead_letter_topic must differ from requests")
        return self

    def connection(self, base: KafkaConnection) -> KafkaConnection:
        """``base`` (the store's connection) with this worker's ``client_config`` over it."""
        if not self.client_config:
            return base
        values = base.connection_values()
        values["client_config"] = {**base.client_config, **self.client_config}
        return KafkaConnection.model_validate(values)  # the reserved-property rule applies

    @property
    def dead_letters(self) -> str:
        """The dead-letter topic's name."""
        return self.dead_letter_topic or f"{self.requests}.dead-letter"
