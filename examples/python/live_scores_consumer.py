"""Read ``live-scores`` from the beginning with aiokafka and print every record as one JSON line.

Each line: partition, offset, key, the ``schema`` header, the writer schema's full name and the
decoded record. ``LiveScoresDecoder`` (``ingester.consume``) picks the writer schema by the
value's fingerprint among ``schemas/`` and its releases (single-object encoding; the bundled
folder unless ``--schemas-dir`` names another), or by its schema id from the registry given
with ``--schema-registry-url`` (the registry wire format), and checks that the key is the
record's ``match_id`` and the ``schema`` header its full name.

    usage: live_scores_consumer.py BOOTSTRAP_SERVERS TOPIC MAX_RECORDS [--schemas-dir DIR]
                                   [--schema-registry-url URL]

``MAX_RECORDS`` 0 reads forever. A record that cannot be decoded stops the program (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from ingester.consume import DecodeFailed, LiveScoresDecoder


# --8<-- [start:consume]
async def consume(
    bootstrap: str, topic: str, max_records: int, schemas_dir: Path | None, registry_url: str | None
) -> None:
    """Print ``max_records`` records (0: forever) as JSON lines."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    decoder = LiveScoresDecoder(schemas_dir, registry_url=registry_url)
    await consumer.start()
    seen = 0
    try:
        async for message in consumer:
            score = await decoder.decode_record(message)
            line = {
                "partition": message.partition,
                "offset": message.offset,
                "key": message.key.decode() if message.key else None,
                "schema": dict(message.headers)["schema"].decode(),
                "name": score.schema_name,
                "record": score.record,
            }
            print(orjson.dumps(line).decode(), flush=True)
            seen += 1
            if seen == max_records:
                return
    finally:
        await consumer.stop()
        await decoder.close()


# --8<-- [end:consume]


def main() -> int:
    """Parse the arguments and consume."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap_servers")
    parser.add_argument("topic")
    parser.add_argument("max_records", type=int)
    parser.add_argument("--schemas-dir", type=Path)
    parser.add_argument("--schema-registry-url")
    args = parser.parse_args()
    try:
        asyncio.run(
            consume(
                args.bootstrap_servers,
                args.topic,
                args.max_records,
                args.schemas_dir,
                args.schema_registry_url,
            )
        )
    except DecodeFailed as exc:
        print(f"live_scores_consumer: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
