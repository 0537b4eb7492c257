"""The sidecar service, the command line, and the local Kafka launcher."""
