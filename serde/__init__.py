"""Wire-compatible Flink Agents action-state records: models, codec, keys, payloads."""
