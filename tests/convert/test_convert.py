"""SportConverter: the protocol's examples convert; every malformed ``data`` is one clear line."""

from __future__ import annotations

from typing import Any

import pytest

from ingester.convert import Converters, ValidationFailed, load_converters
from ingester.convert.common import parse_timestamp_millis
from ingester.convert.samples import protocol_example

RECEIVED_AT_MS = 1_795_881_792_500


@pytest.fixture(scope="module")
def converters() -> Converters:
    return load_converters()


def convert(converters: Converters, data: Any, op: str = "update") -> dict[str, Any]:
    converter = converters.get(data["sport"] if isinstance(data, dict) else "soccer")
    assert converter is not None
    return converter.convert(op, data, RECEIVED_AT_MS)


def failure(converters: Converters, data: Any, sport: str = "soccer") -> str:
    converter = converters.get(sport)
    assert converter is not None
    with pytest.raises(ValidationFailed) as raised:
        converter.convert("update", data, RECEIVED_AT_MS)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_soccer_example_becomes_the_record(converters: Converters) -> None:
    record = convert(converters, protocol_example("soccer"), "snapshot")
    assert record["match_id"] == 41282
    assert record["op"] == "snapshot"
    assert record["seq"] == 1234
    assert record["updated_at"] == 1_795_881_792_120  # 2026-11-28T16:03:12.120Z
    assert record["start_time"] == 1_795_878_000_000  # 2026-11-28T15:00:00Z
    assert record["received_at"] == RECEIVED_AT_MS
    assert record["clock"] == {
        "minute": 63, "second": 12, "period": "2H", "running": True, "added_time": 0
    }  # fmt: skip
    assert record["stats"]["possession"] == {"home": 55, "away": 45}
    assert record["events"][0]["player"] == "B. Saka"


def test_cricket_example_becomes_the_record(converters: Converters) -> None:
    record = convert(converters, protocol_example("cricket"))
    assert record["updated_at"] == 1_795_874_400_120  # 2026-11-28T14:00:00.120Z
    assert record["target"] is None
    assert record["score"] == {"runs": 154, "wickets": 3, "overs": "27.4"}
    assert record["over"]["balls"] == ["1", "4", "W", "0"]
    assert record["bowler"]["name"] == "P. Cummins"
    assert record["last_event"]["type"] == "four"


def test_converter_names(converters: Converters) -> None:
    assert {"cricket", "soccer"} <= set(converters.sports)
    soccer = converters.get("soccer")
    assert soccer is not None
    assert soccer.sport == "soccer"
    assert soccer.schema_name == "com.sportrix.livescores.SoccerMatchState"
    assert converters.get("tennis") is None


def _delete(data: dict[str, Any], path: tuple[str | int, ...]) -> None:
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("sport", "path", "expected"),
    [
        ("soccer", ("match_id",), "data.match_id: required field missing"),
        ("soccer", ("home",), "data.home: required field missing"),
        ("soccer", ("start_time",), "data.start_time: required field missing"),
        ("soccer", ("score", "away"), "data.score.away: required field missing"),
        ("soccer", ("clock", "period"), "data.clock.period: required field missing"),
        ("soccer", ("stats", "red_cards"), "data.stats.red_cards: required field missing"),
        ("soccer", ("events", 0, "label"), "data.events[0].label: required field missing"),
        ("cricket", ("format",), "data.format: required field missing"),
        ("cricket", ("score", "overs"), "data.score.overs: required field missing"),
        ("cricket", ("over", "balls"), "data.over.balls: required field missing"),
        ("cricket", ("batsmen", 1, "on_strike"),
         "data.batsmen[1].on_strike: required field missing"),
        ("cricket", ("bowler", "wickets"), "data.bowler.wickets: required field missing"),
        ("cricket", ("scorecard", 0, "declared"),
         "data.scorecard[0].declared: required field missing"),
    ],
)  # fmt: skip
def test_missing_required_field(
    converters: Converters, sport: str, path: tuple[str | int, ...], expected: str
) -> None:
    data = protocol_example(sport)
    _delete(data, path)
    assert failure(converters, data, sport) == expected


@pytest.mark.parametrize(
    ("sport", "path", "value", "expected"),
    [
        ("soccer", ("score", "home"), "1", "data.score.home: expected integer, got string"),
        ("soccer", ("score", "home"), True, "data.score.home: expected integer, got boolean"),
        ("soccer", ("score", "home"), 1.0, "data.score.home: expected integer, got number"),
        ("soccer", ("home",), None, "data.home: expected string, got null"),
        ("soccer", ("clock", "running"), 1, "data.clock.running: expected boolean, got integer"),
        ("soccer", ("phase",), [], "data.phase: expected object, got array"),
        ("soccer", ("events",), {}, "data.events: expected array, got object"),
        ("soccer", ("events", 0, "team"), 7, "data.events[0].team: expected string, got integer"),
        ("soccer", ("match_id",), 0, "data.match_id: must be greater than 0, got 0"),
        ("soccer", ("match_id",), -5, "data.match_id: must be greater than 0, got -5"),
        ("soccer", ("match_id",), "41282", "data.match_id: expected integer, got string"),
        ("soccer", ("seq",), "7", "data.seq: expected integer, got string"),
        ("soccer", ("updated_at",), "yesterday",
         "data.updated_at: invalid ISO-8601 timestamp 'yesterday'"),
        ("soccer", ("start_time",), 1700000000,
         "data.start_time: expected ISO-8601 timestamp string, got integer"),
        ("soccer", ("sport",), "tennis", "data.sport: expected 'soccer', got 'tennis'"),
        ("cricket", ("target",), "250", "data.target: expected integer, got string"),
        ("cricket", ("over", "balls", 2), 4, "data.over.balls[2]: expected string, got integer"),
        ("cricket", ("bowler",), "P. Cummins", "data.bowler: expected object, got string"),
    ],
)  # fmt: skip
def test_wrong_type(
    converters: Converters, sport: str, path: tuple[str | int, ...], value: Any, expected: str
) -> None:
    data = protocol_example(sport)
    _set(data, path, value)
    assert failure(converters, data, sport) == expected


def test_data_not_an_object(converters: Converters) -> None:
    assert failure(converters, ["soccer"]) == "data: expected object, got array"
    assert failure(converters, None) == "data: expected object, got null"


def test_several_problems_are_counted_on_one_line(converters: Converters) -> None:
    assert failure(converters, {"sport": "soccer"}).startswith("data.match_id: required field")
    assert "more)" in failure(converters, {"sport": "soccer"})


def test_unknown_op_is_refused(converters: Converters) -> None:
    converter = converters.get("soccer")
    assert converter is not None
    with pytest.raises(ValidationFailed, match=r"^op: expected snapshot or update, got 'delta'$"):
        converter.convert("delta", protocol_example("soccer"), RECEIVED_AT_MS)


def test_unknown_vocabulary_is_kept(converters: Converters) -> None:
    soccer = protocol_example("soccer")
    soccer["status"] = "suspended_weather"
    soccer["clock"]["period"] = "GOLDEN_GOAL"
    soccer["phase"]["code"] = "drinks_break"
    soccer["events"][0]["type"] = "penalty_saved"
    record = convert(converters, soccer)
    assert (record["status"], record["clock"]["period"]) == ("suspended_weather", "GOLDEN_GOAL")
    assert (record["phase"]["code"], record["events"][0]["type"]) == (
        "drinks_break",
        "penalty_saved",
    )

    cricket = protocol_example("cricket")
    cricket["format"] = "The Hundred"
    cricket["over"]["balls"].append("5nb")
    cricket["last_event"]["type"] = "free_hit"
    record = convert(converters, cricket)
    assert record["format"] == "The Hundred"
    assert record["over"]["balls"][-1] == "5nb"
    assert record["last_event"]["type"] == "free_hit"


def test_extra_fields_are_ignored(converters: Converters) -> None:
    soccer = protocol_example("soccer")
    soccer["weather"] = {"temp": 7}
    soccer["clock"]["stoppage_reason"] = "injury"
    soccer["events"][0]["assist"] = "M. Odegaard"
    record = convert(converters, soccer)
    assert "weather" not in record
    assert "stoppage_reason" not in record["clock"]
    assert "assist" not in record["events"][0]


def test_cricket_nullables(converters: Converters) -> None:
    cricket = protocol_example("cricket")
    cricket.update(target=None, bowler=None, last_event=None, batsmen=[])
    record = convert(converters, cricket)
    assert (record["target"], record["bowler"], record["last_event"]) == (None, None, None)
    assert record["batsmen"] == []
    cricket["target"] = 301
    assert convert(converters, cricket)["target"] == 301


def test_soccer_nullables(converters: Converters) -> None:
    soccer = protocol_example("soccer")
    soccer["phase"]["team"] = None
    soccer["events"][0].update(team=None, player=None)
    record = convert(converters, soccer)
    assert record["phase"]["team"] is None
    assert (record["events"][0]["team"], record["events"][0]["player"]) == (None, None)


def test_missing_nullable_fields_mean_null(converters: Converters) -> None:
    soccer = protocol_example("soccer")
    for key in ("seq", "updated_at"):
        del soccer[key]
    del soccer["phase"]["team"]
    record = convert(converters, soccer)
    assert (record["seq"], record["updated_at"]) == (None, None)
    assert "team" not in record["phase"]  # written as the schema's default, null


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2026-11-28T16:03:12.120Z", 1_795_881_792_120),
        ("2026-11-28T17:03:12.120+01:00", 1_795_881_792_120),
        ("2026-11-28T16:03:12.120", 1_795_881_792_120),  # naive: taken as UTC
        ("2026-11-28T16:03:12.120999Z", 1_795_881_792_120),  # microseconds floored
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_timestamps(text: str, millis: int) -> None:
    assert parse_timestamp_millis(text) == millis
