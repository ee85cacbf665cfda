"""The hot-path benchmark function runs (it asserts nothing about speed)."""

from __future__ import annotations

import pytest

from ingester.convert import load_converters
from ingester.convert.samples import sample_frames
from ingester.encode import build_encoder
from sportrix_devkit.bench.hot_path import main, measure_hot_path


def test_measure_hot_path_reports_every_sport() -> None:
    converters = load_converters()
    encoder = build_encoder(converters.schemas, topic="live-scores")
    costs = measure_hot_path(sample_frames(20), converters, encoder, passes=1)
    assert set(costs) == {"soccer", "cricket", "all"}
    assert all(micros > 0 for micros in costs.values())


def test_command_prints_a_line_per_sport(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--frames", "10"])
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        "soccer", "cricket", "all"
    ]  # fmt: skip
