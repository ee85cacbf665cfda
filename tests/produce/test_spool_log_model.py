"""The segment log against a model (a list), by hypothesis: any sequence of appends, prepends,
reads, releases, rewinds and restarts, on real files with tiny segments."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ingester.produce.spool.framing import HEADER_SIZE
from ingester.produce.spool.log import SegmentLog, SpoolFull

MAX_BYTES = 6000
SEGMENT = 700


class SegmentLogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="spool-model-"))
        self.log = SegmentLog(self.directory / "spool", MAX_BYTES, segment_bytes=SEGMENT)
        self.held: list[bytes] = []  # oldest first
        self.read = 0  # of them read and not released
        self.made = 0

    def new(self, sizes: list[int]) -> list[bytes]:
        out = [b"%06d:" % (self.made + i) + b"x" * size for i, size in enumerate(sizes)]
        self.made += len(sizes)
        return out

    def fits(self, payloads: list[bytes]) -> bool:
        used = sum(HEADER_SIZE + len(p) for p in self.held)
        return used + sum(HEADER_SIZE + len(p) for p in payloads) <= MAX_BYTES

    @rule(sizes=st.lists(st.integers(0, 300), max_size=12))
    def append(self, sizes: list[int]) -> None:
        payloads = self.new(sizes)
        if self.fits(payloads):
            self.log.append(payloads)
            self.held += payloads
        else:
            try:
                self.log.append(payloads)
            except SpoolFull:
                return
            raise AssertionError("SpoolFull expected")

    @precondition(lambda self: self.read == 0)
    @rule(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=5))
    def prepend(self, sizes: list[int]) -> None:
        payloads = self.new(sizes)
        if self.fits(payloads):
            self.log.prepend(payloads)
            self.held = payloads + self.held

    @rule(limit=st.integers(0, 20))
    def read_some(self, limit: int) -> None:
        got = self.log.read(limit)
        assert got == self.held[self.read : self.read + limit]
        self.read += len(got)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        count = data.draw(st.integers(0, self.read))
        self.log.release(count)
        del self.held[:count]
        self.read -= count

    @rule()
    def rewind(self) -> None:
        self.log.rewind()
        self.read = 0

    @rule(sync=st.booleans())
    def restart(self, sync: bool) -> None:
        if sync:
            self.log.sync()
        self.log.close()
        self.log = SegmentLog(self.directory / "spool", MAX_BYTES, segment_bytes=SEGMENT)
        assert self.log.take_damage() == []
        self.read = 0

    @invariant()
    def counts_match(self) -> None:
        assert self.log.records == len(self.held)
        assert self.log.unread == len(self.held) - self.read
        assert self.log.size == sum(HEADER_SIZE + len(p) for p in self.held)
        assert (self.log.oldest_appended_at is None) == (not self.held)

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.directory)


SegmentLogModel.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
test_segment_log_model = SegmentLogModel.TestCase
