"""Options shared by the fleet's commands (``send``, ``worker``): the connection flags, the
topics, and ``-X KEY=VALUE`` librdkafka properties as kcat takes them.

A flag left out is None and not passed on, so the settings object reads it from the
environment (``KAFKA_BOOTSTRAP_SERVERS``, ``ACTIONSTATE_*``) or takes its default: the
flags, the environment and the Python API mean the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import typer

from actionstate.client.kafka import KafkaConnection

__all__ = [
    "BootstrapServersOption",
    "PropertyOption",
    "RequestsOption",
    "StateTopicOption",
    "parse_client_properties",
    "settings_from_flags",
]

S = TypeVar("S", bound=KafkaConnection)

BootstrapServersOption = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        help="Kafka bootstrap servers, HOST:PORT,... (env KAFKA_BOOTSTRAP_SERVERS or "
        "ACTIONSTATE_BOOTSTRAP_SERVERS; default localhost:9092).",
        show_default=False,
    ),
]
RequestsOption = Annotated[
    str | None,
    typer.Option(
        "--requests",
        help="The requests topic the fleet consumes (env ACTIONSTATE_REQUESTS).",
        show_default=False,
    ),
]
StateTopicOption = Annotated[
    str | None,
    typer.Option("--topic", help="The state topic (env ACTIONSTATE_TOPIC).", show_default=False),
]
PropertyOption = Annotated[
    list[str] | None,
    typer.Option(
        "-X",
        "--property",
        metavar="KEY=VALUE",
        help="A librdkafka property for every Kafka client, e.g. -X session.timeout.ms=6000 "
        "(repeatable; over ACTIONSTATE_CLIENT_CONFIG). Properties the project's guarantees "
        "rest on (acks, enable.idempotence, ...) are refused.",
        show_default=False,
    ),
]


def parse_client_properties(values: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` as ``{"a": "1", "b": "x=y"}`` (a value may hold ``=``; a later
    key wins); a usage error naming an item that is not ``KEY=VALUE``."""
    properties: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise typer.BadParameter(
                f"{item[:80]!r} is not KEY=VALUE (e.g. -X session.timeout.ms=6000)",
                param_hint="'-X' / '--property'",
            )
        if not name:
            # The value is left out of the message: it may be a password.
            raise typer.BadParameter(
                "a property has no KEY before its '=' (write KEY=VALUE)",
                param_hint="'-X' / '--property'",
            )
        properties[name] = value
    return properties


def settings_from_flags(
    cls: type[S], flags: Mapping[str, object | None], properties: list[str] | None = None
) -> S:
    """``cls`` from the flags given (None: not given, so the environment or the default
    decides), with the ``-X`` ``properties`` added to its ``client_config`` over the
    environment's. A reserved property fails validation (the command exits 2 saying why)."""
    extra = parse_client_properties(properties or [])
    given: dict[str, Any] = {name: value for name, value in flags.items() if value is not None}
    settings = cls(**given)
    if not extra:
        return settings
    return cls(**given, client_config={**settings.client_config, **extra})
