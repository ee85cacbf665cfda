"""The subscription book: placement, reconnects, seq tracking, refusals, retirement."""

from ingester.upstream.subscriptions import (
    OVERSIZED_TRIES,
    CloseConnection,
    FrameVerdict,
    MatchState,
    OpenConnection,
    ReplaceConnection,
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
        subscribe_timeout=30.0,
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
    assert b.on_data(1, 0, True, 10, "soccer", "live", now=1.0) is FrameVerdict.IN_ORDER
    assert b.get(1).state is MatchState.ACTIVE  # type: ignore[union-attr]
    b.disconnected(0)
    assert b.get(1).state is MatchState.PENDING  # type: ignore[union-attr]
    assert b.connected(0) == [Subscribe(0, 1)]


def test_seq_verdicts() -> None:
    b = book()
    b.follow(1)
    b.connected(0)
    b.on_data(1, 0, True, 10, "soccer", "live", now=1.0)
    assert b.on_data(1, 0, False, 11, "soccer", "live", now=1.0) is FrameVerdict.IN_ORDER
    assert b.on_data(1, 0, False, 11, "soccer", "live", now=1.0) is FrameVerdict.OUT_OF_ORDER
    assert b.on_data(1, 0, False, 9, "soccer", "live", now=1.0) is FrameVerdict.OUT_OF_ORDER
    assert b.on_data(1, 0, False, 14, "soccer", "live", now=1.0) is FrameVerdict.GAP
    assert b.get(1).last_seq == 14  # type: ignore[union-attr]
    assert b.resubscribe(1) == [Subscribe(0, 1)]
    assert b.get(1).state is MatchState.PENDING  # type: ignore[union-attr]
    # while the repair is pending, a further jump is not another gap request
    assert b.on_data(1, 0, False, 20, "soccer", "live", now=1.0) is FrameVerdict.IN_ORDER
    # a snapshot repeating the current seq is always fine
    assert b.on_data(1, 0, True, 20, "soccer", "live", now=1.0) is FrameVerdict.IN_ORDER


def test_frames_for_unfollowed_matches_are_not_held() -> None:
    b = book()
    assert not b.holds(5, 0, snapshot=True)
    b.follow(5)
    b.unfollow(5)
    assert not b.holds(5, 0, snapshot=True)


def test_frames_from_a_connection_that_no_longer_holds_the_match_are_not_its() -> None:
    """Removed from connection 0 (still open for match 2) and followed again on connection
    1: what connection 0 still delivers of match 1 is not its, snapshots included."""
    b = book(per_connection=2)
    for match_id in (1, 2):
        b.follow(match_id)
    b.connected(0)
    for match_id in (1, 2):
        assert b.holds(match_id, 0, snapshot=True)
        b.on_data(match_id, 0, True, 10, "soccer", "live", now=1.0)
    assert b.unfollow(1) == [Unsubscribe(0, 1)]
    b.follow(3)  # takes the room on connection 0
    assert b.follow(1) == [OpenConnection(1)]
    assert b.get(1).connection == 1  # type: ignore[union-attr]
    for snapshot in (False, True):
        assert not b.holds(1, 0, snapshot)
    assert b.holds(2, 0, snapshot=False)
    assert not b.on_error(1, 0, "rate_limited", "late", now=2.0)  # refuses nothing
    assert b.get(1).state is MatchState.PENDING  # type: ignore[union-attr]
    b.connected(1)
    assert b.holds(1, 1, snapshot=True)
    assert b.on_data(1, 1, True, 12, "soccer", "live", now=2.0) is FrameVerdict.IN_ORDER
    assert b.holds(1, 1, snapshot=False)


def test_followed_again_on_a_live_connection_it_starts_with_its_snapshot() -> None:
    """Removed and followed again on the same, still connected, connection: its frames
    written there before the new subscribe belong to the old one (the upstream answers a
    subscribe with a snapshot first), so they are not its until that snapshot."""
    b = book(per_connection=2)
    b.follow(1)
    b.follow(2)
    b.connected(0)
    b.on_data(1, 0, True, 10, "soccer", "live", now=1.0)
    b.unfollow(1)
    assert b.follow(1) == [Subscribe(0, 1)]
    assert not b.holds(1, 0, snapshot=False)
    assert b.holds(1, 0, snapshot=True)
    b.on_data(1, 0, True, 15, "soccer", "live", now=2.0)
    assert b.holds(1, 0, snapshot=False)
    # a new connection carries no older subscription: no snapshot needed first
    b.disconnected(0)
    b.connected(0)
    assert b.holds(1, 0, snapshot=False)
    assert b.holds(2, 0, snapshot=False)


def test_an_unanswered_subscribe_is_sent_again_then_its_connection_replaced() -> None:
    b = book(per_connection=5)
    b.follow(1)
    b.follow(2)
    assert b.tick(now=0.0) == []  # not connected: nothing sent, nothing due
    assert b.connected(0) == [Subscribe(0, 1), Subscribe(0, 2)]
    b.subscribe_sent(0, 1, now=100.0)
    b.subscribe_sent(0, 2, now=100.0)
    b.on_data(2, 0, True, 1, "soccer", "live", now=101.0)
    assert b.tick(now=129.0) == []
    assert b.tick(now=130.0) == [Subscribe(0, 1, resend=True)]
    assert b.get(1).state is MatchState.PENDING  # type: ignore[union-attr]
    b.subscribe_sent(0, 1, now=131.0)
    assert b.tick(now=160.0) == []
    assert b.tick(now=161.0) == [ReplaceConnection(0, unanswered=1)]
    assert b.tick(now=162.0) == []
    b.disconnected(0)
    assert b.tick(now=300.0) == []
    assert b.connected(0) == [Subscribe(0, 1), Subscribe(0, 2)]
    b.subscribe_sent(0, 1, now=301.0)
    b.subscribe_sent(0, 2, now=301.0)
    assert b.tick(now=331.0) == [Subscribe(0, 1, resend=True), Subscribe(0, 2, resend=True)]
    b.on_data(1, 0, True, 5, "soccer", "live", now=332.0)
    b.on_data(2, 0, True, 5, "soccer", "live", now=332.0)
    assert b.tick(now=1000.0) == []


def test_the_answer_deadline_runs_from_when_the_subscribe_is_sent_not_queued() -> None:
    b = book()
    b.follow(1)
    b.connected(0)
    assert b.tick(now=0.0) == []
    assert b.tick(now=100.0) == []  # still waiting its turn in the connection's queue
    b.subscribe_sent(0, 1, now=100.0)
    assert b.tick(now=129.0) == []
    assert b.tick(now=130.0) == [Subscribe(0, 1, resend=True)]
    assert b.tick(now=200.0) == []  # the one sent again is queued too
    b.subscribe_sent(0, 1, now=200.0)
    assert b.tick(now=229.0) == []
    assert b.tick(now=230.0) == [ReplaceConnection(0, unanswered=1)]
    b.subscribe_sent(1, 1, now=231.0)  # another connection's: not this match's subscribe
    b.on_data(1, 0, True, 5, "soccer", "live", now=232.0)
    b.subscribe_sent(0, 1, now=233.0)  # answered already: no deadline
    assert b.tick(now=1000.0) == []


def test_a_replacement_that_did_not_happen_is_asked_for_again() -> None:
    b = book()
    b.follow(1)
    b.connected(0)
    b.subscribe_sent(0, 1, now=0.0)
    assert b.tick(now=30.0) == [Subscribe(0, 1, resend=True)]
    b.subscribe_sent(0, 1, now=30.0)
    assert b.tick(now=60.0) == [ReplaceConnection(0, unanswered=1)]
    assert b.tick(now=90.0) == [Subscribe(0, 1, resend=True)]  # still connected, unanswered
    b.subscribe_sent(0, 1, now=90.0)
    assert b.tick(now=120.0) == [ReplaceConnection(0, unanswered=1)]


def test_a_subscribe_answered_by_a_refusal_is_not_sent_again() -> None:
    b = book()
    b.follow(1)
    b.connected(0)
    b.subscribe_sent(0, 1, now=0.0)
    assert b.on_error(1, 0, "sport_not_enabled", "no", now=5.0)
    assert b.tick(now=100.0) == []


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
    assert b.on_error(1, 0, "sport_not_enabled", "cricket is not enabled", now=10.0)
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
    assert not b.on_error(99, 0, "match_not_found", "", now=0.0)


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
    b.on_data(1, 0, True, 1, "soccer", "live", now=0.0)
    b.on_data(1, 0, False, 2, "soccer", "finished", now=10.0)
    assert b.tick(now=69.0) == []
    assert b.tick(now=70.0) == [Retire(1)]
    assert b.tick(now=200.0) == []


def test_a_match_that_resumes_is_not_retired() -> None:
    b = book(retire_after=60.0)
    b.follow(1)
    b.connected(0)
    b.on_data(1, 0, True, 1, "soccer", "interrupted", now=0.0)
    b.on_data(1, 0, False, 2, "soccer", "postponed", now=10.0)
    b.on_data(1, 0, False, 3, "soccer", "live", now=20.0)
    assert b.tick(now=1000.0) == []


def test_a_match_whose_messages_are_too_large_is_given_up_after_a_few() -> None:
    b = book(per_connection=5)
    b.follow(1)
    b.connected(0)
    assert not b.on_oversized(1, 0)
    b.on_data(1, 0, True, 3, "soccer", "live", now=1.0)  # a snapshot read: the count restarts
    assert not b.on_oversized(1, 1)  # not the connection that holds it
    for _ in range(OVERSIZED_TRIES - 1):
        b.disconnected(0)
        assert b.connected(0) == [Subscribe(0, 1)]
        assert not b.on_oversized(1, 0)
    b.disconnected(0)
    assert b.connected(0) == [Subscribe(0, 1)]
    assert b.on_oversized(1, 0)
    match = b.get(1)
    assert match is not None
    assert match.as_status(2.0)["refused"] == {
        "code": "message_too_big",
        "reason": f"{OVERSIZED_TRIES} messages over the size limit in a row",
    }
    b.disconnected(0)
    assert b.connected(0) == []
    assert b.tick(now=10_000.0) == []
    b.unfollow(1)
    assert b.follow(1) == [OpenConnection(0)]  # removed and added: tried again
    assert b.connected(0) == [Subscribe(0, 1)]
