"""The spool's segment log on real files (tmp_path): order, release, restart, damage, limits."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingester.produce.spool.framing import HEADER_SIZE
from ingester.produce.spool.log import Damage, SegmentLog, SpoolError, SpoolFull

SEGMENT = 4096  # small segments: a few dozen payloads each, so tests cross many


def payloads(start: int, count: int, size: int = 100) -> list[bytes]:
    return [f"{n:08d}".encode().ljust(size, b".") for n in range(start, start + count)]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def read_all(log: SegmentLog) -> list[bytes]:
    out: list[bytes] = []
    while batch := log.read(37):
        out += batch
    return out


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def opened(spool: Path) -> Iterator[list[SegmentLog]]:
    """Every log a test opens, closed at the end."""
    logs: list[SegmentLog] = []
    yield logs
    for log in logs:
        log.close()


def open_log(
    spool: Path, opened: list[SegmentLog], max_bytes: int = 10**8, segment: int = SEGMENT
) -> SegmentLog:
    log = SegmentLog(spool, max_bytes, segment_bytes=segment)
    opened.append(log)
    return log


def filled(
    spool: Path, opened: list[SegmentLog], count: int, batch: int, **kwargs: int
) -> SegmentLog:
    """A log opened and given ``count`` payloads in batches of ``batch``."""
    log = open_log(spool, opened, **kwargs)
    for start in range(0, count, batch):
        log.append(payloads(start, batch))
    return log


def reopen(log: SegmentLog, spool: Path, opened: list[SegmentLog], **kwargs: int) -> SegmentLog:
    log.close()
    return open_log(spool, opened, **kwargs)


def test_payloads_come_back_in_order_across_segments(spool: Path, opened: list) -> None:
    log = filled(spool, opened, 500, 10)
    assert len(segments(spool)) > 10
    assert log.records == log.unread == 500
    assert log.size == 500 * (HEADER_SIZE + 100)
    assert read_all(log) == payloads(0, 500)
    assert log.records == 500
    assert log.unread == 0
    assert log.read(10) == []


def test_a_restart_delivers_exactly_what_was_not_released(spool: Path, opened: list) -> None:
    log = filled(spool, opened, 300, 20)
    assert log.read(130) == payloads(0, 130)
    log.release(100)  # 100..129 read, not released
    assert log.records == 200
    assert log.unread == 170
    log = reopen(log, spool, opened)
    assert log.take_damage() == []
    assert log.records == log.unread == 200
    assert log.size == 200 * (HEADER_SIZE + 100)
    assert read_all(log) == payloads(100, 200)


def test_released_segments_are_deleted_and_an_empty_log_keeps_no_segment(
    spool: Path, opened: list
) -> None:
    log = filled(spool, opened, 200, 10)
    before = len(segments(spool))
    log.read(100)
    log.release(100)
    assert 0 < len(segments(spool)) < before
    log.release(0)
    log.read(100)
    log.release(100)
    assert log.records == log.size == 0
    assert segments(spool) == []
    assert log.oldest_appended_at is None
    log.append(payloads(200, 3))  # the next append starts a new segment
    log = reopen(log, spool, opened)
    assert read_all(log) == payloads(200, 3)


def test_release_and_rewind(spool: Path, opened: list) -> None:
    log = open_log(spool, opened)
    log.append(payloads(0, 10))
    assert log.read(4) == payloads(0, 4)
    with pytest.raises(ValueError, match="release"):
        log.release(5)
    log.release(2)
    log.rewind()
    assert log.unread == 8
    assert log.read(100) == payloads(2, 8)


def test_reading_follows_appends_to_the_segment_being_read(spool: Path, opened: list) -> None:
    log = open_log(spool, opened, segment=10**6)
    got: list[bytes] = []
    for start in range(0, 100, 10):
        log.append(payloads(start, 10))
        got += log.read(7)
    got += read_all(log)
    assert got == payloads(0, 100)


def test_a_large_backlog_is_read_in_chunks(spool: Path, opened: list) -> None:
    # Over 1 MiB in one segment: the reader's buffer is refilled mid-segment, across frames.
    log = open_log(spool, opened, segment=8 * 1024 * 1024)
    for start in range(0, 4000, 100):
        log.append(payloads(start, 100, size=333))
    log = reopen(log, spool, opened, segment=8 * 1024 * 1024)
    assert log.records == 4000
    assert read_all(log) == payloads(0, 4000, size=333)


def test_oldest_appended_at_survives_a_restart(spool: Path, opened: list) -> None:
    log = open_log(spool, opened)
    before = time.time()
    log.append(payloads(0, 50))
    later = time.time()
    log.append(payloads(50, 50))
    oldest = log.oldest_appended_at
    assert oldest is not None
    assert before <= oldest <= later
    log.read(50)
    log.release(50)
    second = log.oldest_appended_at
    assert second is not None
    assert second >= later
    log = reopen(log, spool, opened)
    assert log.oldest_appended_at == second
    status = log.describe()
    assert status["records"] == 50
    assert status["unread"] == 50
    assert status["size"] == 50 * (HEADER_SIZE + 100)
    assert status["max_bytes"] == 10**8
    assert status["segments"] == len(segments(spool))
    assert status["directory"] == str(spool)
    assert 0 <= status["oldest_age_seconds"] < 60


def test_spool_full_writes_nothing(spool: Path, opened: list) -> None:
    frame = HEADER_SIZE + 100
    log = open_log(spool, opened, max_bytes=25 * frame)
    log.append(payloads(0, 20))
    files = {p.name: p.stat().st_size for p in segments(spool)}
    with pytest.raises(SpoolFull, match="do not fit"):
        log.append(payloads(20, 6))
    assert {p.name: p.stat().st_size for p in segments(spool)} == files
    assert log.records == 20
    log.append(payloads(20, 5))  # exactly full
    log.read(10)
    log.release(10)
    log.append(payloads(25, 10))  # released bytes are room again
    log.rewind()
    assert read_all(log) == payloads(10, 25)


def test_prepend_goes_before_everything_also_after_a_restart(spool: Path, opened: list) -> None:
    log = open_log(spool, opened)
    for start in range(100, 300, 20):
        log.append(payloads(start, 20))
    log.read(30)
    log.release(30)  # the oldest segment is now partly released
    log.prepend(payloads(0, 5))
    assert log.records == 175
    assert log.read(8) == payloads(0, 5) + payloads(130, 3)
    log.rewind()
    log = reopen(log, spool, opened)
    assert log.records == 175
    assert read_all(log) == payloads(0, 5) + payloads(130, 170)
    log.rewind()
    log.prepend(payloads(5000, 2))  # a head that starts at its first byte
    log = reopen(log, spool, opened)
    assert read_all(log) == payloads(5000, 2) + payloads(0, 5) + payloads(130, 170)


def test_prepend_to_an_empty_log_and_to_the_segment_taking_appends(
    spool: Path, opened: list
) -> None:
    log = open_log(spool, opened, segment=10**6)
    log.prepend(payloads(10, 5))
    log.append(payloads(15, 5))
    log.read(3)
    log.release(3)  # one segment, partly released, taking appends
    log.prepend(payloads(0, 2))
    log.append(payloads(20, 5))
    assert read_all(log) == payloads(0, 2) + payloads(13, 12)
    log = reopen(log, spool, opened)
    assert read_all(log) == payloads(0, 2) + payloads(13, 12)


def test_prepend_with_payloads_read_and_not_released_is_refused(spool: Path, opened: list) -> None:
    log = open_log(spool, opened)
    log.append(payloads(0, 3))
    log.read(1)
    with pytest.raises(RuntimeError):
        log.prepend(payloads(10, 1))


def test_a_second_log_on_the_same_directory_is_refused(spool: Path, opened: list) -> None:
    log = open_log(spool, opened)
    with pytest.raises(SpoolError, match="in use by another process"):
        SegmentLog(spool, 10**6)
    log.close()
    open_log(spool, opened)  # the lock went with the close


def test_a_directory_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(SpoolError, match="is not a directory"):
        SegmentLog(file, 10**6)
    with pytest.raises(SpoolError, match="cannot be created"):
        SegmentLog(file / "spool", 10**6)


def torn_tail_cases() -> Iterator[tuple[str, int]]:
    yield "cut mid-frame", -30
    yield "cut mid-header", -(100 + HEADER_SIZE - 5)
    yield "last byte flipped", 0
    yield "zeros after the end", 1


@pytest.mark.parametrize(("case", "change"), list(torn_tail_cases()))
def test_a_torn_tail_is_dropped_counted_and_appends_go_on(
    spool: Path, opened: list, case: str, change: int
) -> None:
    log = filled(spool, opened, 100, 10)
    log.close()
    last = segments(spool)[-1]
    data = bytearray(last.read_bytes())
    if change < 0:
        del data[change:]
    elif change == 0:
        data[-1] ^= 0xFF
    else:
        data += bytes(8192)
    last.write_bytes(bytes(data))
    log = open_log(spool, opened)
    damage = log.take_damage()
    assert [d.kind for d in damage] == ["torn_record"], case
    assert damage[0].segment == last.name
    assert damage[0].records == 1
    expected = 99 if change != 1 else 100
    assert log.records == expected
    log.append(payloads(100, 10))
    log = reopen(log, spool, opened)
    assert log.take_damage() == []
    assert read_all(log) == payloads(0, expected) + payloads(100, 10)


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_corrupt_frame_at_open_skips_the_rest_of_its_segment(spool: Path, opened: list) -> None:
    log = filled(spool, opened, 200, 10)
    log.close()
    files = segments(spool)
    per_segment = (SEGMENT // (10 * (HEADER_SIZE + 100))) * 10
    flip(files[1], 3 * (HEADER_SIZE + 100) + HEADER_SIZE + 5)  # the 4th payload of the 2nd
    log = open_log(spool, opened)
    (damage,) = log.take_damage()
    assert damage.kind == "corrupt_segment"
    assert damage.segment == files[1].name
    assert damage.skipped_bytes == (per_segment - 3) * (HEADER_SIZE + 100)
    assert "checksum" in damage.detail
    expected = payloads(0, per_segment + 3) + payloads(2 * per_segment, 200 - 2 * per_segment)
    assert log.records == len(expected)
    assert read_all(log) == expected
    log = reopen(log, spool, opened)
    assert log.take_damage() == []  # reported once: the damaged part is cut away


def test_a_corrupt_frame_met_while_reading_is_counted_and_the_next_segment_read(
    spool: Path, opened: list
) -> None:
    log = filled(spool, opened, 200, 10)
    per_segment = (SEGMENT // (10 * (HEADER_SIZE + 100))) * 10
    assert log.read(5) == payloads(0, 5)
    second = segments(spool)[1]
    flip(second, 7 * (HEADER_SIZE + 100) + HEADER_SIZE)  # damaged after the open, unread
    got = read_all(log)
    (damage,) = log.take_damage()
    assert damage == Damage(
        "corrupt_segment",
        second.name,
        damage.detail,
        (per_segment - 7) * (HEADER_SIZE + 100),
        per_segment - 7,
    )
    assert got == payloads(5, per_segment + 2) + payloads(2 * per_segment, 200 - 2 * per_segment)
    assert log.records == 200 - (per_segment - 7)
    assert log.unread == 0
    log.release(log.records)
    assert log.records == 0
    assert segments(spool) == []


def test_a_corrupt_frame_in_the_segment_taking_appends(spool: Path, opened: list) -> None:
    log = open_log(spool, opened, segment=10**6)
    log.append(payloads(0, 10))
    flip(segments(spool)[0], 2 * (HEADER_SIZE + 100) + 3)
    assert read_all(log) == payloads(0, 2)
    assert [d.records for d in log.take_damage()] == [8]
    log.append(payloads(10, 5))  # into a new segment
    assert read_all(log) == payloads(10, 5)
    assert len(segments(spool)) == 2
    assert read_all(reopen(log, spool, opened)) == payloads(0, 2) + payloads(10, 5)


def test_an_unreadable_read_position_delivers_everything_again(spool: Path, opened: list) -> None:
    log = open_log(spool, opened)
    log.append(payloads(0, 20))
    log.read(10)
    log.release(10)
    log.close()
    (spool / "cursor").write_bytes(b"\xff" * 128)
    log = open_log(spool, opened)
    assert read_all(log) == payloads(0, 20)  # at least once


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_sync_in_a_thread_while_appends_rotate_and_releases_delete(
    spool: Path, opened: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    def checked(real: Callable[[int], None]) -> Callable[[int], None]:
        def sync_one_file(fd: int) -> None:
            """The real call, slowed, failing if its fd was closed (and reused) meanwhile."""
            before = os.fstat(fd).st_ino
            time.sleep(0.0005)
            real(fd)
            assert os.fstat(fd).st_ino == before, "the fd was closed and reused during a sync"

        return sync_one_file

    monkeypatch.setattr(os, "fsync", checked(os.fsync))
    monkeypatch.setattr(os, "fdatasync", checked(os.fdatasync))
    baseline = open_fds()
    log = SegmentLog(spool, 10**8, segment_bytes=2048)
    errors: list[BaseException] = []
    syncs = 0
    done = threading.Event()

    def syncing() -> None:
        nonlocal syncs
        while not done.is_set():
            try:
                log.sync()
            except BaseException as error:
                errors.append(error)
                return
            syncs += 1

    thread = threading.Thread(target=syncing)
    thread.start()
    try:
        delivered: list[bytes] = []
        for start in range(0, 6000, 10):
            log.append(payloads(start, 10))
            if start % 30 == 0:
                batch = log.read(25)
                delivered += batch
                log.release(len(batch))
    finally:
        done.set()
        thread.join(timeout=60)
    assert errors == []
    assert syncs > 0
    assert len(segments(spool)) < 400  # released segments were deleted
    log.sync()
    assert open_fds() <= baseline + 4  # lock, cursor, writer, reader: synced files closed
    log.close()
    assert open_fds() == baseline
    log = open_log(spool, opened)
    assert delivered + read_all(log) == payloads(0, 6000)


@pytest.mark.timeout(60)
def test_a_corrupt_frame_in_a_segment_larger_than_one_read(spool: Path, opened: list) -> None:
    # Over 1 MiB in one segment: the damage is met in the reader's first chunk, with more of
    # the segment after that chunk; at open and while reading.
    big = 8 * 1024 * 1024
    log = open_log(spool, opened, segment=big)
    for start in range(0, 4000, 100):
        log.append(payloads(start, 100, size=333))
    log.close()
    flip(segments(spool)[0], 10 * (HEADER_SIZE + 333) + HEADER_SIZE + 1)
    log = open_log(spool, opened, segment=big)
    assert [d.kind for d in log.take_damage()] == ["corrupt_segment"]
    assert read_all(log) == payloads(0, 10, size=333)
    log.append(payloads(5000, 3000, size=333))
    log = reopen(log, spool, opened, segment=big)
    assert log.read(10) == payloads(0, 10, size=333)
    flip(segments(spool)[-1], 20 * (HEADER_SIZE + 333) + HEADER_SIZE + 1)
    assert read_all(log) == payloads(5000, 20, size=333)
    assert [d.records for d in log.take_damage()] == [2980]
