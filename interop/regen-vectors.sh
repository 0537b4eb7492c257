#!/usr/bin/env bash
# Regenerates tests/vectors/seder/ with the real Flink Agents 0.3.0 classes (one command):
# builds the Java harness, then lets it write the golden records, keys, partitions and UUIDs.
# Needs Java 17+, Maven, and org.apache.flink:flink-agents-runtime:0.3.0 from Maven Central.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mvn -q -B -f "$root/interop/java/pom.xml" package
java -jar "$root/interop/java/target/actionstate-interop.jar" vectors "$root/tests/vectors/seder"
