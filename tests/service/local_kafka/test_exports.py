"""The public names of actionstate.service.local_kafka."""

from __future__ import annotations

import actionstate.service.local_kafka as local_kafka
from tests._support import check_exports

PUBLIC = {"BrokerStatus", "LocalKafka", "LocalKafkaError", "LocalKafkaSettings", "Progress"}


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    check_exports(local_kafka, PUBLIC)


def test_the_broker_templates_are_package_data() -> None:
    from importlib import resources

    folder = resources.files("actionstate.service.local_kafka")
    for name in ("kafka-pom.xml", "kafka-log4j2.xml"):
        assert (folder / name).read_text("utf-8").lstrip().startswith("<")
