"""The subscription book: placement, reconnects, seq tracking, refusals, retirement."""

from ingester.upstream.subscriptions import (
    CloseConnection,
    FrameVerdict,
    MatchState,
    OpenConnection,
    Retire,
    Subscribe,
    SubscriptionBook,
    Unsubscribe,
)


def book(
    per_connection: int = 2, max_matches: int = 100, retire_after: float = 0.0
) -> SubscriptionBook:
    return SubscriptionBook(
        per_connection=per_connection,
        max_matches=max_matches,
        refused_retry=300.0,
        retire_after=retire_after,
    )


def test_matches_are_packed_onto_connections_under_the_cap() -> None:
    b = book(per_connection=2)
    actions = [a for m in (1, 2, 3, 4, 5) for a in b.follow(m)]
    assert actions == [OpenConnection(0), OpenConnection(1), OpenConnection(2)]
    assert [b.connection_matches(c) for c in b.connection_ids()] == [[1, 2], [3, 4], [5]]


def test_connecting_subscribes_everything_the_connection_carries() -> None:
    b = book()
    b.follow(1)
    b.follow(2)
    assert b.connected(0) == [Subscribe(0, 1), Subscribe(0, 2)]
    assert b.follow(3) == [OpenConnection(1)]
    assert b.connected(1) == [Subscribe(1, 3)]


def test_follow_on_a_live_connection_subscribes_at_once() -> None:
    b = book(per_connection=5)
    b.follow(1)
    b.connected(0)
    assert b.follow(2) == [Subscribe(0, 2)]
    assert b.follow(2) == []


def test_snapshot_activates_and_disconnect_makes_pending_again() -> None:
    b = book()
    b.follow(1)
    b.connected(0)
    assert b.get(1).state is MatchState.PENDING  # type: ignore[union-attr]
    assert b.on_data(1, True, 10, "soccer", "live", now=1.0) is FrameVerdict.IN_ORDER
    assert b.get(1).state is MatchState.ACTIVE  # type: ignore[union-attr]
    b.disconnected(0)
    assert b.get(1).state is MatchState.PENDING  # type: ignore[union-attr]
    assert b.connected(0) == [Subscribe(0, 1)]


def test_seq_verdicts() -> None:
    b = book()
    b.follow(1)
    b.connected(0)
    b.on_data(1, True, 10, "soccer", "live", now=1.0)
    assert b.on_data(1, False, 11, "soccer", "live", now=1.0) is FrameVerdict.IN_ORDER
    assert b.on_data(1, False, 11, "soccer", "live", now=1.0) is FrameVerdict.OUT_OF_ORDER
    assert b.on_data(1, False, 9, "soccer", "live", now=1.0) is FrameVerdict.OUT_OF_ORDER
    assert b.on_data(1, False, 14, "soccer", "live", now=1.0) is FrameVerdict.GAP
    assert b.get(1).last_seq == 14  # type: ignore[union-attr]
    assert b.resubscribe(1) == [Subscribe(0, 1)]
    assert b.get(1).state is MatchState.PENDING  # type: ignore[union-attr]
    # while the repair is pending, a further jump is not another gap request
    assert b.on_data(1, False, 20, "soccer", "live", now=1.0) is FrameVerdict.IN_ORDER
    # a snapshot repeating the current seq is always fine
    assert b.on_data(1, True, 20, "soccer", "live", now=1.0) is FrameVerdict.IN_ORDER


def test_frames_for_unfollowed_matches_are_flagged() -> None:
    assert book().on_data(5, True, 1, "soccer", "live", now=0.0) is FrameVerdict.NOT_FOLLOWED


def test_unfollow_unsubscribes_and_closes_an_empty_connection() -> None:
    b = book()
    b.follow(1)
    b.connected(0)
    assert b.unfollow(1) == [Unsubscribe(0, 1), CloseConnection(0)]
    assert 1 not in b
    assert b.unfollow(1) == []


def test_refused_match_is_retried_only_after_the_delay() -> None:
    b = book()
    b.follow(1)
    b.connected(0)
    assert b.on_error(1, "sport_not_enabled", "cricket is not enabled", now=10.0)
    match = b.get(1)
    assert match is not None
    assert match.state is MatchState.REFUSED
    assert match.as_status(10.0)["refused"] == {
        "code": "sport_not_enabled",
        "reason": "cricket is not enabled",
    }
    assert b.tick(now=100.0) == []
    assert b.connected(0) == []  # a reconnect does not hammer a refused match either
    assert b.tick(now=310.0) == [Subscribe(0, 1)]
    assert match.state is MatchState.PENDING
    assert not b.on_error(99, "match_not_found", "", now=0.0)


def test_max_matches_holds_the_excess_back_until_room_frees() -> None:
    b = book(per_connection=10, max_matches=2)
    b.follow(1)
    b.follow(2)
    b.connected(0)
    assert b.follow(3) == []
    assert b.is_waiting(3)
    assert b.counts()["waiting"] == 1
    assert b.unfollow(1) == [Unsubscribe(0, 1), Subscribe(0, 3)]
    assert not b.is_waiting(3)


def test_a_match_over_for_the_grace_period_is_retired_once() -> None:
    b = book(retire_after=60.0)
    b.follow(1)
    b.connected(0)
    b.on_data(1, True, 1, "soccer", "live", now=0.0)
    b.on_data(1, False, 2, "soccer", "finished", now=10.0)
    assert b.tick(now=69.0) == []
    assert b.tick(now=70.0) == [Retire(1)]
    assert b.tick(now=200.0) == []


def test_a_match_that_resumes_is_not_retired() -> None:
    b = book(retire_after=60.0)
    b.follow(1)
    b.connected(0)
    b.on_data(1, True, 1, "soccer", "interrupted", now=0.0)
    b.on_data(1, False, 2, "soccer", "postponed", now=10.0)
    b.on_data(1, False, 3, "soccer", "live", now=20.0)
    assert b.tick(now=1000.0) == []
