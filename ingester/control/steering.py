"""What the config topic's changes do to this replica (asyncio glue, no Kafka client).

The :class:`~ingester.control.consumer.ConfigConsumer` reports changes; :class:`Steering`
carries them into the :class:`SubscriptionBook` and hands its actions to the upstream,
waits for the records already received before a rebalance gives matches away, and writes
the ``remove`` command of a match the book retires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ingester.control.assignment import Change, Follow
from ingester.control.commands import encode_command
from ingester.observe.metrics import Metrics
from ingester.pipeline import OutRecord
from ingester.produce.buffer import RecordBuffer
from ingester.settings import Settings
from ingester.upstream.subscriptions import Action, SubscriptionBook

__all__ = ["Steering"]

log = logging.getLogger("ingester")


class Steering:
    """Applies config changes to ``book``, its actions to ``execute`` (the upstream pool)."""

    def __init__(
        self,
        settings: Settings,
        book: SubscriptionBook,
        execute: Callable[[list[Action]], None],
        buffer: RecordBuffer,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._book = book
        self._execute = execute
        self._buffer = buffer
        self._refusals = metrics.capacity_refusals
        self._retired = metrics.retired_matches
        self._stopping = False
        self._background: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        """Ignore every later change: reading has stopped for good, the group is being left."""
        self._stopping = True

    def apply(self, changes: list[Change]) -> None:
        """Follow or unfollow each changed match (the consumer's ``apply``)."""
        if self._stopping:
            return
        for change in changes:
            if isinstance(change, Follow):
                actions = self._book.follow(change.match_id)
                if self._book.is_waiting(change.match_id):
                    self._refusals.inc()
                    log.warning(
                        "match %d held back: this instance follows INGESTER_MAX_MATCHES=%d",
                        change.match_id,
                        self._settings.max_matches,
                    )
            else:
                actions = self._book.unfollow(change.match_id)
            self._execute(actions)

    async def hand_over(self) -> None:
        """Wait (at most a quarter of the session timeout) until every record received so
        far is in Kafka: the matches just given up get a new owner only after this, so its
        first record lands after our last one. The group waits for this replica up to the
        rebalance timeout (the session timeout); a quarter leaves room for noticing the
        rebalance (one heartbeat) and rejoining."""
        limit = self._settings.session_timeout_ms / 4000
        try:
            async with asyncio.timeout(limit):
                await self._buffer.drained()
        except TimeoutError:
            log.warning(
                "matches handed over with %d records not yet acknowledged by Kafka (waited %.1fs)",
                self._buffer.unacknowledged,
                limit,
            )

    def retire(self, match_id: int) -> None:
        """Write the ``remove`` command of a match that has been over for the grace period."""
        settings = self._settings
        match = self._book.get(match_id)
        log.info(
            "match %d retired: %s for %.0fs",
            match_id,
            match.status if match else "over",
            settings.retire_after,
        )
        self._retired.inc()
        key, value = encode_command("remove", match_id)
        record = OutRecord(
            topic=settings.config_topic,
            key=key,
            value=value,
            headers=[("producer", settings.instance_id.encode())],
            received_at=time.time(),
        )
        task = asyncio.create_task(self._buffer.put(record))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
