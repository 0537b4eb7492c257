"""Configuration of the sidecar (``actionstate serve``): one typed object."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from actionstate.client import KafkaStoreSettings
from actionstate.client.kafka import (
    KafkaConnection,
    Partitions,
    ReplicationFactor,
    TopicName,
)

__all__ = ["DEFAULT_TOPIC", "SidecarSettings", "is_loopback"]

DEFAULT_TOPIC = "actionstate-states"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SidecarSettings(KafkaConnection):
    """Where the sidecar listens and which topic it serves, on a Kafka connection.

    Every field can come from an argument or from ``ACTIONSTATE_<FIELD>`` in the
    environment (``KAFKA_BOOTSTRAP_SERVERS`` is honoured too), the connection's security
    settings and librdkafka passthrough included. Unlike the stores' connection,
    ``bootstrap_servers`` may be unset: then the sidecar starts the project's local broker,
    keeping its data under ``data_dir``. Binding anything but a loopback address requires a
    token, and so does a signing secret: the sidecar signs the records its callers send, so
    only callers holding the token may write.
    """

    bootstrap_servers: str | None = Field(  # type: ignore[assignment]  # None: start a broker
        default=None,
        min_length=1,
        validation_alias=AliasChoices(
            "bootstrap_servers", "ACTIONSTATE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    topic: TopicName = DEFAULT_TOPIC
    partitions: Partitions | None = None
    """Partitions to create the topic with; None: the existing topic's count, else 64."""
    replication_factor: ReplicationFactor = 1
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    data_dir: Path = Path(".actionstate")

    @field_validator("token", "signing_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # ``ACTIONSTATE_TOKEN=`` in an env file means "no token", not an empty one.
        if value == "" or (isinstance(value, SecretStr) and not value.get_secret_value()):
            return None
        return value

    @model_validator(mode="after")
    def _token_when_needed(self) -> SidecarSettings:
        if self.token_value is not None:
            return self
        if not is_loopback(self.host):
            raise ValueError(
                f"binding {self.host!r} exposes the state API beyond this machine: set a "
                "token (--token or ACTIONSTATE_TOKEN), or bind 127.0.0.1"
            )
        if self.signing_secret is not None:
            raise ValueError(
                "a signing secret (ACTIONSTATE_SIGNING_SECRET) makes the sidecar sign the "
                "records it is sent, and workers unpickle signed payloads: set a token "
                "(--token or ACTIONSTATE_TOKEN) so that only callers holding it can write, "
                "even on 127.0.0.1"
            )
        return self

    @property
    def token_value(self) -> str | None:
        """The bearer token, or None when requests are not authenticated."""
        if self.token is None or not self.token.get_secret_value():
            return None
        return self.token.get_secret_value()

    def store_settings(self, bootstrap_servers: str, partitions: int) -> KafkaStoreSettings:
        """The Kafka store settings of the sidecar's journal, on the sidecar's connection
        (``timeout_s``: how long a write may wait for the broker, then 503)."""
        return KafkaStoreSettings(
            **{**self.connection_values(), "bootstrap_servers": bootstrap_servers},
            topic=self.topic,
            partitions=partitions,
            replication_factor=self.replication_factor,
            signing_secret=self.signing_secret,
        )
