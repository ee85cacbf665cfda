"""convert + encode on mutated protocol-shaped data: a record, ValidationFailed or EncodeFailed."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingester.convert import ValidationFailed, load_converters
from ingester.convert.samples import protocol_example
from ingester.encode import Decoder, EncodeFailed, build_encoder
from tests.mutations import mutate

CONVERTERS = load_converters()
ENCODER = build_encoder(CONVERTERS.schemas, topic="live-scores")
DECODER = Decoder(CONVERTERS.schemas_dir)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["2026-11-28T16:03:12.120Z", "2026-13-01T00:00:00Z", "", "snapshot"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated_data(draw: st.DrawFn) -> Any:
    """A protocol example with a few random deletions, replacements and additions."""
    data: Any = protocol_example(draw(st.sampled_from(["soccer", "cricket"])))
    mutate(draw, data, JSON_VALUES, max_edits=4)
    if draw(st.integers(min_value=0, max_value=20)) == 0:
        data = draw(JSON_VALUES)
    return data


@settings(max_examples=400, deadline=None)
@given(mutated_data(), st.sampled_from(["snapshot", "update", "error", ""]))
def test_convert_and_encode_never_raise_anything_else(data: Any, op: str) -> None:
    sport = data.get("sport") if isinstance(data, dict) else "soccer"
    converter = CONVERTERS.get(sport if isinstance(sport, str) else "soccer") or CONVERTERS.get(
        "soccer"
    )
    assert converter is not None
    problem = ""
    try:
        record = converter.convert(op, data, 1_795_881_792_500)
        value = ENCODER.encode(converter.schema_name, record)
    except (ValidationFailed, EncodeFailed) as exc:
        problem = str(exc)
    if problem:
        assert "\n" not in problem
    else:
        assert DECODER.decode(value).record["match_id"] == record["match_id"]
