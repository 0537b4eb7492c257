#!/usr/bin/env bash
# Recomputes keys.json on a JVM (needs java 17+ and mvn): cd tests/vectors/jvm && ./regen.sh
set -euo pipefail; cd "$(dirname "$0")"; mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory=target/jars; java -cp 'target/jars/*' KeyVectors.java > keys.json
