"""sportrix-ingester: the Sportrix live-scores WebSocket stream, as Avro records in Kafka."""

__version__ = "0.1.0"
