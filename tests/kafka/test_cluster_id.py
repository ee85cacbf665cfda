"""Cluster ids for ``kafka-storage format`` (no broker needed)."""

from __future__ import annotations

import uuid

import pytest

from sportrix_devkit.localkafka import broker
from sportrix_devkit.localkafka.broker import new_cluster_id


def test_an_id_that_would_read_as_an_option_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 makes the first base64 character '-': the storage tool took "-t -…" for two options
    # (one format in 64 failed that way, the whole test session with it)
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=bytes(16))])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(drawn))
    assert new_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"


def test_ids_are_22_url_safe_characters() -> None:
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert set(cluster_id) <= alphabet
        assert not cluster_id.startswith("-")
