"""The in-process hot-path ceiling: JSON decode → validate → convert → encode, per frame.

``python -m sportrix_devkit.bench.hot_path`` prints the cost per sport on :func:`sample_frames`;
the benchmark calls :func:`measure_hot_path` with the simulator's own frames.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import orjson

from ingester.codecs import codecs_for
from ingester.convert.registry import Converters, load_converters
from ingester.convert.samples import sample_frames
from ingester.encode.encoders import ValueEncoder, build_encoder

__all__ = ["main", "measure_hot_path"]


def measure_hot_path(
    frames: Sequence[bytes], converters: Converters, encoder: ValueEncoder, *, passes: int = 5
) -> dict[str, float]:
    """CPU microseconds per frame by sport (and ``"all"``), the best of ``passes`` passes
    (CPU time, not wall time: on a shared machine a pass may be descheduled).

    Each frame is decoded, validated, converted and encoded by its sport's codec
    (``encoder`` prepared) as the pipeline does: the lazy decoder and the compiled writer
    first (:meth:`ingester.codecs.Codecs.fast_record`), ``orjson`` and the checked way when
    they refuse; frames of unknown sports are
    skipped. Passes after the first find the arrays of the first in the writer's memos, so
    the figure is a little better than a live stream's (where a soccer match's events repeat
    in 98 % of its frames and cricket's batsmen hardly ever).
    """
    codecs = codecs_for(converters, encoder)
    by_sport: dict[str, list[bytes]] = {}
    for raw in frames:
        by_sport.setdefault(orjson.loads(raw)["data"]["sport"], []).append(raw)
    costs: dict[str, float] = {}
    for sport, raws in by_sport.items():
        codec = codecs.get(sport)
        if codec is None:
            continue
        make, fast_record = codec.record, codecs.fast_record
        best = float("inf")
        for _ in range(passes):
            start = time.process_time()
            for raw in raws:
                if fast_record(raw, 0) is None:
                    frame = orjson.loads(raw)
                    make(frame["op"], frame["data"], 0, json_native=True)
            best = min(best, time.process_time() - start)
        costs[sport] = best / len(raws) * 1e6
    counts = {sport: len(by_sport[sport]) for sport in costs}
    total = sum(counts.values())
    costs["all"] = sum(costs[sport] * counts[sport] for sport in counts) / total if total else 0.0
    return costs


def main(argv: Sequence[str] | None = None) -> None:
    """Print the hot-path cost per sport on sample frames (single-object encoding)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4000, help="sample frames (default 4000)")
    parser.add_argument("--max-events", type=int, default=20, help="soccer events per frame")
    args = parser.parse_args(argv)
    converters = load_converters()
    encoder = build_encoder(converters.schemas, topic="live-scores")
    costs = measure_hot_path(
        sample_frames(args.frames, max_events=args.max_events), converters, encoder
    )
    for sport, micros in costs.items():
        print(f"{sport:8s} {micros:7.1f} µs/frame  {1e6 / micros:9.0f} frames/s")


if __name__ == "__main__":
    main()
