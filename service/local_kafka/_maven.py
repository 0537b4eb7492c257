"""Resolves Apache Kafka's jars from Maven Central with Maven, once, into a cache folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from actionstate.service._errors import LocalKafkaError

__all__ = ["LOG4J_VERSION", "is_installed", "resolve_kafka_jars"]

# Kafka 4.1 logs through SLF4J 1.7, so log4j2's 1.7 binding (not slf4j2-impl) is the one
# that gives the broker a file log.
LOG4J_VERSION = "2.24.3"
_MARKER = ".complete"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def is_installed(jars_dir: Path) -> bool:
    """Whether ``jars_dir`` holds a completely resolved set of jars."""
    return (jars_dir / _MARKER).is_file()


def resolve_kafka_jars(
    jars_dir: Path, *, kafka_version: str, mvn: str, timeout: float = 1800.0
) -> Path:
    """Copy ``kafka_2.13:<kafka_version>`` and its runtime dependencies into ``jars_dir``.

    A folder that is already complete is returned as is, without running Maven, so a cached
    install works offline. The jars are resolved into a temporary sibling and renamed into
    place, so an interrupted or concurrent run never leaves a half-filled cache behind.
    """
    if is_installed(jars_dir):
        return jars_dir
    mvn_path = shutil.which(mvn)
    if mvn_path is None:
        raise LocalKafkaError(
            f"Maven ({mvn!r}) was not found; it resolves the Kafka jars from Maven Central: "
            "install it (apt-get install maven) or set ACTIONSTATE_KAFKA_MVN to its path"
        )
    jars_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{jars_dir.name}-", dir=jars_dir.parent))
    try:
        pom = work / "pom.xml"
        pom.write_text(_pom(kafka_version), encoding="utf-8")
        out = work / "jars"
        command = [
            mvn_path,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={out}",
            "-DincludeScope=runtime",
        ]
        try:
            proc = subprocess.run(
                command, cwd=work, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalKafkaError(
                f"Maven did not finish resolving Kafka {kafka_version} within {timeout:.0f}s; "
                "check network access to Maven Central (repo.maven.apache.org)"
            ) from exc
        if proc.returncode != 0:
            raise LocalKafkaError(
                f"Maven could not resolve org.apache.kafka:kafka_2.13:{kafka_version} from "
                f"Maven Central (exit code {proc.returncode}); check the version exists and "
                "that repo.maven.apache.org is reachable",
                log_tail=_tail(proc.stdout + proc.stderr),
            )
        if not any(out.glob("kafka_2.13-*.jar")):
            raise LocalKafkaError(
                f"Maven finished but no kafka_2.13 jar was copied into {out}",
                log_tail=_tail(proc.stdout + proc.stderr),
            )
        (out / _MARKER).write_text(f"{kafka_version}\n", encoding="utf-8")
        if jars_dir.exists() and not is_installed(jars_dir):
            shutil.rmtree(jars_dir)
        try:
            out.rename(jars_dir)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not is_installed(jars_dir):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return jars_dir


def _pom(kafka_version: str) -> str:
    template = (resources.files("actionstate.service.local_kafka") / "kafka-pom.xml").read_text(
        "utf-8"
    )
    return template.replace("@KAFKA_VERSION@", kafka_version).replace(
        "@LOG4J_VERSION@", LOG4J_VERSION
    )


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(_ANSI.sub("", text).strip().splitlines()[-lines:])
