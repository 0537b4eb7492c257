# The actionstate sidecar (`actionstate serve`), built from this repository.
#
#   docker build -t kafka-actionstate .
#   docker run --rm -p 127.0.0.1:8080:8080 -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 \
#     -e ACTIONSTATE_TOPIC=orders-state -e ACTIONSTATE_TOKEN=... kafka-actionstate
#
# It binds 0.0.0.0 inside the container, so a token is required (it refuses to start
# without one). compose.yaml runs it next to a single-node Kafka.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY serde ./serde
COPY client ./client
COPY service ./service
RUN pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 actionstate
USER actionstate
WORKDIR /home/actionstate

ENV ACTIONSTATE_HOST=0.0.0.0 \
    ACTIONSTATE_PORT=8080
EXPOSE 8080

# Ready once the view caught up with the topic; the token is the one the server requires.
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=24 \
    CMD python -c "import os, urllib.request as r; r.urlopen(r.Request('http://127.0.0.1:8080/readyz', headers={'Authorization': 'Bearer ' + os.environ.get('ACTIONSTATE_TOKEN', '')}), timeout=3)"

ENTRYPOINT ["actionstate"]
CMD ["serve"]
