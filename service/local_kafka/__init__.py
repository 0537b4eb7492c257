"""A local Apache Kafka broker without Docker: the launcher (``LocalKafka``), its settings,
and the Maven resolution of Kafka's jars (``kafka-pom.xml``, ``kafka-log4j2.xml`` are its
package data)."""

from actionstate.service._errors import LocalKafkaError
from actionstate.service.local_kafka._launcher import (
    BrokerStatus,
    LocalKafka,
    LocalKafkaSettings,
    Progress,
)

__all__ = ["BrokerStatus", "LocalKafka", "LocalKafkaError", "LocalKafkaSettings", "Progress"]
