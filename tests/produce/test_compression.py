"""INGESTER_COMPRESSION_LEVEL reaches the record batches aiokafka builds, in both builders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiokafka.codec
import pytest
from aiokafka.record import default_records
from aiokafka.record._crecords import default_records as c_default_records

from ingester.produce.compression import apply_compression_level

BUILDERS = [
    default_records._DefaultRecordBatchBuilderPy,
    c_default_records.DefaultRecordBatchBuilder,
]
READERS = {
    default_records._DefaultRecordBatchBuilderPy: default_records._DefaultRecordBatchPy,
    c_default_records.DefaultRecordBatchBuilder: c_default_records.DefaultRecordBatch,
}
_HEADER = 61  # bytes before the (compressed) records of a v2 batch
_CODECS = {"none": 0, "lz4": 3, "zstd": 4}


@pytest.fixture(autouse=True)
def _default_levels() -> Iterator[None]:
    yield
    for codec in ("lz4", "gzip", "zstd"):
        apply_compression_level(codec, None)


def _batch(builder_class: Any, codec: str) -> bytes:
    builder = builder_class(
        magic=2,
        compression_type=_CODECS[codec],
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for index in range(40):
        value = b'{"home":"Arsenal","away":"Chelsea","minute":%d,"events":[]}' % index
        builder.append(
            0, timestamp=1_700_000_000_000, key=b"%d" % (index % 7), value=value, headers=[]
        )
    return bytes(builder.build())


@pytest.mark.parametrize("builder_class", BUILDERS)
@pytest.mark.parametrize(("codec", "level"), [("lz4", 1), ("lz4", 9), ("zstd", 1), ("zstd", 19)])
def test_batches_are_compressed_at_the_level_applied(
    builder_class: Any, codec: str, level: int
) -> None:
    records = _batch(builder_class, "none")[_HEADER:]
    encode = getattr(aiokafka.codec, f"{codec}_encode")

    assert apply_compression_level(codec, level) == level
    batch = _batch(builder_class, codec)

    assert batch[_HEADER:] == encode(records, level=level)
    decoded = [record.value for record in READERS[builder_class](batch)]
    assert decoded == [
        record.value for record in READERS[builder_class](_batch(builder_class, "none"))
    ]


def test_lz4_defaults_to_its_fast_mode_and_the_others_to_aiokafkas_levels() -> None:
    assert apply_compression_level("lz4", None) == 1
    assert apply_compression_level("gzip", None) == 9
    assert apply_compression_level("zstd", None) == 3
    assert apply_compression_level("snappy", None) is None
    assert apply_compression_level("none", None) is None
    records = _batch(BUILDERS[1], "none")[_HEADER:]
    apply_compression_level("lz4", None)
    assert _batch(BUILDERS[1], "lz4")[_HEADER:] == aiokafka.codec.lz4_encode(records, level=1)
    assert aiokafka.codec.lz4_encode(records, level=1) != aiokafka.codec.lz4_encode(records)


@pytest.mark.parametrize(("codec", "level"), [("lz4", 0), ("lz4", 18), ("snappy", 1), ("gzip", 10)])
def test_levels_outside_the_codecs_range_are_refused(codec: str, level: int) -> None:
    with pytest.raises(ValueError, match=codec):
        apply_compression_level(codec, level)
