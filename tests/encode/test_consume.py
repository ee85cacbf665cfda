"""``ingester.consume.LiveScoresDecoder``: a Kafka record in, a checked ``LiveScore`` out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from ingester.consume import DecodeFailed, LiveScore, LiveScoresDecoder
from ingester.encode import SingleObjectEncoder, load_schemas
from tests.encode.test_single_object import record_of

SOCCER = "com.sportrix.livescores.SoccerMatchState"


@dataclass
class Message:
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


def soccer_message(**changes: object) -> Message:
    record = record_of("soccer")
    value = SingleObjectEncoder(load_schemas()["soccer"]).encode(record)
    message = Message(str(record["match_id"]).encode(), value, [("schema", SOCCER.encode())])
    for name, change in changes.items():
        setattr(message, name, change)
    return message


async def test_a_record_as_the_ingester_writes_it() -> None:
    decoder = LiveScoresDecoder()
    score = await decoder.decode_record(soccer_message())
    await decoder.close()
    record = record_of("soccer")
    assert score == LiveScore(record["match_id"], SOCCER, "update", record["seq"], score.record)
    assert score.record["score"] == record["score"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"value": None}, "no value"),
        ({"key": b"99"}, "key '99' is not the record's match_id"),
        ({"key": None}, "key None is not the record's match_id"),
        (
            {"headers": [("schema", b"com.sportrix.livescores.CricketMatchState")]},
            "schema header 'com.sportrix.livescores.CricketMatchState' is not the writer schema "
            + SOCCER,
        ),
        (
            {"value": b"\xc3\x01" + bytes(8) + b"\x00"},
            "unknown schema fingerprint 0000000000000000",
        ),
    ],
)
async def test_a_record_the_ingester_did_not_write_is_one_line_error(
    changes: dict[str, object], error: str
) -> None:
    with pytest.raises(DecodeFailed, match="^" + error.replace("(", r"\(")) as failed:
        await LiveScoresDecoder().decode_record(soccer_message(**changes))
    assert "\n" not in str(failed.value)
