"""Configuration of the sidecar (``actionstate serve``): one typed object."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from actionstate.client import KafkaStoreSettings
from actionstate.client.kafka import (
    KafkaConnection,
    Partitions,
    ReplicationFactor,
    TopicName,
)
from actionstate.service.sidecar._readiness import DEFAULT_READY_MAX_LAG_S
from actionstate.service.sidecar._view import DEFAULT_TOMBSTONE_RETENTION_S

__all__ = [
    "DEFAULT_TOPIC",
    "SidecarSettings",
    "is_loopback",
    "readable_by_others",
]

DEFAULT_TOPIC = "actionstate-states"


def readable_by_others(path: Path) -> bool:
    """Whether users other than the owner and the group may read ``path``."""
    return bool(path.stat().st_mode & stat.S_IROTH)


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

    ``token_file`` (``ACTIONSTATE_TOKEN_FILE``) names a file holding the token, read once
    here (surrounding whitespace stripped), so the token appears in no command line; a
    missing or empty file is an error, one others may read a warning at start.
    ``max_body_bytes``: larger request bodies get a 413 (default: ``max_record_bytes``).
    ``ready_max_lag_s``: ``/readyz`` turns 503 when the view was not confirmed current with
    the topic for longer (see ``_readiness``). ``tombstone_retention_s``: how long the view
    remembers a deletion for clients rebuilding from a marker.
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
    replication_factor: ReplicationFactor | None = None
    """Replicas of a topic created here; None: min(3, brokers in the cluster)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: SecretStr | None = None
    token_file: Path | None = None
    signing_secret: SecretStr | None = None
    data_dir: Path = Path(".actionstate")
    max_body_bytes: int | None = Field(default=None, ge=1024)
    """Largest request body served (None: ``max_record_bytes``, the record limit)."""
    ready_max_lag_s: float = Field(default=DEFAULT_READY_MAX_LAG_S, gt=0)
    tombstone_retention_s: float = Field(default=DEFAULT_TOMBSTONE_RETENTION_S, ge=0)

    @field_validator("token", "signing_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # ``ACTIONSTATE_TOKEN=`` in an env file means "no token", not an empty one.
        if value == "" or (isinstance(value, SecretStr) and not value.get_secret_value()):
            return None
        return value

    @model_validator(mode="after")
    def _read_token_file(self) -> SidecarSettings:
        path = self.token_file
        if path is None:
            return self
        if self.token is not None:
            raise ValueError(
                "both a token and a token file are set: give one (--token-file keeps the "
                "token out of the process list)"
            )
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"cannot read the token file {str(path)!r}: {exc}; write the token into it, "
                "or point --token-file (ACTIONSTATE_TOKEN_FILE) elsewhere"
            ) from None
        if not text:
            raise ValueError(f"the token file {str(path)!r} is empty: write the token into it")
        object.__setattr__(self, "token", SecretStr(text))  # frozen: set once, here
        return self

    @model_validator(mode="after")
    def _token_when_needed(self) -> SidecarSettings:
        if self.token_value is not None:
            return self
        if not is_loopback(self.host):
            raise ValueError(
                f"binding {self.host!r} exposes the state API beyond this machine: set a "
                "token (--token-file, --token or ACTIONSTATE_TOKEN), or bind 127.0.0.1"
            )
        if self.signing_secret is not None:
            raise ValueError(
                "a signing secret (ACTIONSTATE_SIGNING_SECRET) makes the sidecar sign the "
                "records it is sent, and workers unpickle signed payloads: set a token "
                "(--token-file, --token or ACTIONSTATE_TOKEN) so that only callers holding "
                "it can write, even on 127.0.0.1"
            )
        return self

    @property
    def body_limit(self) -> int:
        """The largest request body served, in bytes."""
        return self.max_record_bytes if self.max_body_bytes is None else self.max_body_bytes

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
