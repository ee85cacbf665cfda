"""Partition ownership: replay first, then follow; revocation hands matches back."""

from ingester.control.assignment import Applied, Assignment, Follow, Reassert, Unfollow
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


def _followed_then_rejected() -> Assignment:
    """Match 7 followed (add at 0), then a rejected record under key 7 at 1."""
    a = Assignment()
    a.assign({0: 0})
    a.apply(0, 0, Command("add", 7))
    assert a.rejected(0, 1, 7) == []
    return a


def test_a_rejected_record_over_a_followed_key_owes_its_add_once() -> None:
    a = _followed_then_rejected()
    assert a.take_reasserts() == [Reassert(0, 7, "add", intent=0, over=1)]
    assert a.take_reasserts() == []
    a.rejected(0, 2, 7)  # lands before the re-assert: that one still comes after it
    assert a.take_reasserts() == []
    assert a.apply(0, 3, Command("add", 7, reasserts=0)) == (Applied.IGNORED, [])
    assert a.take_reasserts() == []
    assert a.matches() == {7}


def test_a_rejected_record_over_a_removed_or_unknown_key_owes_nothing() -> None:
    a = Assignment()
    a.assign({0: 0})
    a.apply(0, 0, Command("add", 7))
    a.apply(0, 1, Command("remove", 7))
    a.rejected(0, 2, 7)
    a.rejected(0, 3, 8)
    a.rejected(0, 4, None)
    assert a.take_reasserts() == []


def test_a_valid_command_on_top_settles_the_key() -> None:
    a = _followed_then_rejected()
    a.apply(0, 2, Command("add", 7))
    assert a.take_reasserts() == []


def test_a_replay_owes_what_its_last_records_shadow_once_caught_up() -> None:
    a = Assignment()
    a.assign({0: 3})
    a.apply(0, 0, Command("add", 7))
    a.apply(0, 1, Command("add", 8))
    assert a.take_reasserts() == []
    assert a.rejected(0, 2, 7) == [Follow(7), Follow(8)]
    assert a.take_reasserts() == [Reassert(0, 7, "add", intent=0, over=2)]


def test_a_replay_owes_nothing_before_it_is_caught_up() -> None:
    a = Assignment()
    a.assign({0: 5})
    a.apply(0, 0, Command("add", 7))
    a.rejected(0, 1, 7)
    assert a.take_reasserts() == []


def test_a_stale_reassert_changes_nothing_and_the_newer_command_is_reasserted() -> None:
    a = _followed_then_rejected()
    (owed,) = a.take_reasserts()
    assert a.apply(0, 2, Command("remove", 7)) == (Applied.APPLIED, [Unfollow(7)])
    # the re-assert lands after the operator's remove
    assert a.apply(0, 3, Command("add", 7, reasserts=owed.intent)) == (Applied.IGNORED, [])
    assert a.matches() == set()
    assert a.take_reasserts() == [Reassert(0, 7, "remove", intent=2, over=3)]


def test_after_compaction_a_reassert_alone_is_the_command() -> None:
    a = Assignment()
    a.assign({0: 4})
    assert a.apply(0, 3, Command("add", 7, reasserts=0)) == (Applied.APPLIED, [Follow(7)])
    # what compaction may leave of add, bad, remove, re-add(0), re-remove(2)
    b = Assignment()
    b.assign({0: 5})
    b.apply(0, 3, Command("add", 7, reasserts=0))
    assert b.apply(0, 4, Command("remove", 7, reasserts=2)) == (Applied.APPLIED, [])
    assert b.matches() == set()
    assert b.take_reasserts() == []


def test_a_failed_reassert_is_due_again() -> None:
    a = _followed_then_rejected()
    (owed,) = a.take_reasserts()
    a.reassert_failed(owed)
    assert a.take_reasserts() == [owed]
    a.revoke([0])
    a.reassert_failed(owed)
    assert a.take_reasserts() == []


def test_removed_keys_are_forgotten_unless_a_reassert_may_be_in_flight() -> None:
    a = Assignment()
    a.assign({0: 0})
    for offset, match_id in enumerate(range(100, 200)):
        a.apply(0, 2 * offset, Command("add", match_id))
        a.apply(0, 2 * offset + 1, Command("remove", match_id, tombstone=True))
    assert a._partitions[0].keys == {}


def test_a_reassert_landing_after_two_newer_commands_is_still_stale() -> None:
    """add, bad, then the operator's add and remove (or remove and tombstone) both before
    the owner's re-assert lands: the re-assert is older than the remove, so it changes
    nothing, live or replayed, and the remove is re-asserted over it."""
    log = [
        Command("add", 7),  # 0
        None,  # 1: a rejected record under key 7
        Command("remove", 7),  # 2: the operator's
        Command("remove", 7, tombstone=True),  # 3: and a tombstone
        Command("add", 7, reasserts=0),  # 4: the owner's re-assert of 0, late
    ]
    live = Assignment()
    live.assign({0: 0})
    replay = Assignment()
    replay.assign({0: len(log)})
    for a in (live, replay):
        for offset, command in enumerate(log):
            if command is None:
                a.rejected(0, offset, 7)
            else:
                a.apply(0, offset, command)
            if a is live and offset == 1:
                assert a.take_reasserts() == [Reassert(0, 7, "add", intent=0, over=1)]
        assert a.matches() == set(), "the operator's remove holds"
        assert a.take_reasserts() == [Reassert(0, 7, "remove", intent=3, over=4)]
