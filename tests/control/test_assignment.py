"""Partition ownership: replay first, then follow; revocation hands matches back."""

from ingester.control.assignment import Applied, Assignment, Follow, Unfollow
from ingester.control.commands import Command


def test_replay_announces_only_the_final_set() -> None:
    a = Assignment()
    assert a.assign({0: 3}) == []
    assert not a.replayed
    assert a.apply(0, 0, Command("add", 1)) == (Applied.APPLIED, [])
    assert a.apply(0, 1, Command("add", 2)) == (Applied.APPLIED, [])
    result, changes = a.apply(0, 2, Command("remove", 1))
    assert result is Applied.APPLIED
    assert changes == [Follow(2)]
    assert a.replayed
    assert a.matches() == {2}


def test_an_empty_partition_is_replayed_at_once() -> None:
    a = Assignment()
    assert a.assign({0: 0, 1: 0}) == []
    assert a.replayed


def test_after_replay_commands_apply_as_they_come() -> None:
    a = Assignment()
    a.assign({0: 0})
    assert a.apply(0, 0, Command("add", 9)) == (Applied.APPLIED, [Follow(9)])
    assert a.apply(0, 1, Command("add", 9)) == (Applied.IGNORED, [])
    assert a.apply(0, 2, Command("remove", 9, tombstone=True)) == (Applied.APPLIED, [Unfollow(9)])
    assert a.apply(0, 3, Command("remove", 9, tombstone=True)) == (Applied.IGNORED, [])


def test_a_rejected_record_still_advances_the_replay() -> None:
    a = Assignment()
    a.assign({0: 2})
    a.apply(0, 0, Command("add", 4))
    assert a.advance(0, 2) == [Follow(4)]
    assert a.replayed


def test_revocation_unfollows_announced_matches_only() -> None:
    a = Assignment()
    a.assign({0: 0, 1: 5})
    a.apply(0, 0, Command("add", 1))
    a.apply(1, 0, Command("add", 2))  # partition 1 still replaying
    assert a.partition_of(2) == 1
    assert a.revoke([0, 1]) == [Unfollow(1)]
    assert a.partitions == []


def test_commands_for_partitions_not_owned_are_ignored() -> None:
    assert Assignment().apply(3, 0, Command("add", 1)) == (Applied.IGNORED, [])
