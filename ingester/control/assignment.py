"""The set of matches this instance follows, by config-topic partition (pure).

A replica owns the config-topic partitions the consumer group assigns to it. On
assignment it replays each partition from the beginning; until a partition is caught up
(its position reached the end offset seen at assignment) its commands only rebuild the
set, so a match added and later removed never reaches the upstream. Once caught up, the
partition's set is announced and every later command is applied as it comes.

Compaction keeps only the newest record of each key. A rejected record changes nothing
while the valid command below it is still there, but once that one is compacted away a
replay would read the key as never added. So the owner of a key tracks each key's last
valid command (its *intent*, the offset it was written at) and whether the newest record
under the key would, read alone, say otherwise; when it would, the partition owes a
:class:`Reassert`: the same command written again, carrying that offset in its
``reasserts`` field. A re-assert whose offset is older than the key's intent is stale (a
newer command came between): it changes nothing and is itself answered by a re-assert.
To tell, a key is remembered (also once removed) from a record that owes it a re-assert
until a re-assert of it is read back, however many commands come between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from ingester.control.commands import Command

__all__ = ["Applied", "Assignment", "Change", "Follow", "Reassert", "Unfollow"]


@dataclass(frozen=True, slots=True)
class Follow:
    """Start following ``match_id``."""

    match_id: int


@dataclass(frozen=True, slots=True)
class Unfollow:
    """Stop following ``match_id``."""

    match_id: int


Change = Follow | Unfollow


@dataclass(frozen=True, slots=True)
class Reassert:
    """Write ``action`` for ``match_id`` again into ``partition``, with ``reasserts=intent``.

    ``over`` is the offset of the record that would otherwise replace it after compaction.
    """

    partition: int
    match_id: int
    action: Literal["add", "remove"]
    intent: int
    over: int


class Applied(StrEnum):
    """What a valid command did (a metric label)."""

    APPLIED = "applied"
    IGNORED = "ignored"  # already so: adding a followed match, removing an unknown one


@dataclass(slots=True)
class _Key:
    """What the log says for one key: its last valid command, and what lies on top of it."""

    action: Literal["add", "remove"]
    intent: int  # the offset the command was first written at
    over: int | None = None  # offset of a newer record that says otherwise when read alone
    reasserting: bool = False  # a Reassert was handed out and has not been read back
    #: the log owes this key a re-assert (a record said otherwise) and none was read since:
    #: one may still land, so its offset must be compared with this key's, also as a remove
    unanswered: bool = False


@dataclass(slots=True)
class _Partition:
    end_offset: int
    matches: set[int] = field(default_factory=set)
    caught_up: bool = False
    keys: dict[int, _Key] = field(default_factory=dict)
    owed: set[int] = field(default_factory=set)  # keys whose Reassert is due


class Assignment:
    """Owned partitions and their matches; see the module docstring."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}

    @property
    def partitions(self) -> list[int]:
        """The partitions owned now."""
        return sorted(self._partitions)

    @property
    def replayed(self) -> bool:
        """True when every owned partition has been replayed up to its end offset."""
        return all(p.caught_up for p in self._partitions.values())

    def matches(self) -> set[int]:
        """Every match the owned partitions define."""
        return set().union(*(p.matches for p in self._partitions.values()))

    def partition_of(self, match_id: int) -> int | None:
        """The owned partition whose commands define ``match_id``."""
        for number, partition in self._partitions.items():
            if match_id in partition.matches:
                return number
        return None

    def assign(self, end_offsets: dict[int, int]) -> list[Change]:
        """Take ownership of partitions (``{partition: end offset}``); replay starts at 0."""
        changes: list[Change] = []
        for number, end in end_offsets.items():
            self._partitions[number] = _Partition(end_offset=end)
            if end <= 0:
                changes.extend(self._catch_up(number))
        return changes

    def revoke(self, partitions: Iterable[int]) -> list[Change]:
        """Give partitions up: their announced matches are no longer followed."""
        changes: list[Change] = []
        for number in partitions:
            partition = self._partitions.pop(number, None)
            if partition is not None and partition.caught_up:
                changes.extend(Unfollow(m) for m in sorted(partition.matches))
        return changes

    def apply(self, partition: int, offset: int, command: Command) -> tuple[Applied, list[Change]]:
        """Apply a valid command read at ``partition``/``offset``."""
        state = self._partitions.get(partition)
        if state is None:
            return Applied.IGNORED, []
        key = state.keys.get(command.match_id)
        intent = offset if command.reasserts is None else min(command.reasserts, offset)
        if key is not None and command.reasserts is not None and intent < key.intent:
            # stale: a newer command came between; alone, this record may say otherwise
            over = offset if command.action != key.action else None
            key.unanswered = False
            self._shadow(state, command.match_id, key, over)
            return Applied.IGNORED, self.advance(partition, offset + 1)
        unanswered = key is not None and key.unanswered and command.reasserts is None
        if command.action == "add" or unanswered or (key is not None and key.over is not None):
            state.keys[command.match_id] = _Key(command.action, intent, unanswered=unanswered)
        else:  # kept only where a re-assert may be in flight, so memory follows the set
            state.keys.pop(command.match_id, None)
        state.owed.discard(command.match_id)
        if command.action == "add":
            result = Applied.IGNORED if command.match_id in state.matches else Applied.APPLIED
            state.matches.add(command.match_id)
            change: Change = Follow(command.match_id)
        else:
            result = Applied.APPLIED if command.match_id in state.matches else Applied.IGNORED
            state.matches.discard(command.match_id)
            change = Unfollow(command.match_id)
        changes = [change] if state.caught_up and result is Applied.APPLIED else []
        return result, changes + self.advance(partition, offset + 1)

    def rejected(self, partition: int, offset: int, key_id: int | None) -> list[Change]:
        """A rejected record was read at ``partition``/``offset`` under ``key_id``'s key."""
        state = self._partitions.get(partition)
        key = None if state is None or key_id is None else state.keys.get(key_id)
        if state is not None and key_id is not None and key is not None:
            # alone, a rejected record follows nothing: it contradicts an add only
            self._shadow(state, key_id, key, offset if key.action == "add" else None)
        return self.advance(partition, offset + 1)

    def take_reasserts(self) -> list[Reassert]:
        """The re-asserts due in replayed partitions; each is handed out once, until the
        key's next record is read or :meth:`reassert_failed` gives it back."""
        due: list[Reassert] = []
        for number, state in sorted(self._partitions.items()):
            if not state.caught_up:
                continue
            for match_id in sorted(state.owed):
                key = state.keys[match_id]
                assert key.over is not None
                key.reasserting = True
                due.append(Reassert(number, match_id, key.action, key.intent, key.over))
            state.owed.clear()
        return due

    def reassert_failed(self, reassert: Reassert) -> None:
        """``reassert`` was not written: it is due again (if still owned and needed)."""
        state = self._partitions.get(reassert.partition)
        key = None if state is None else state.keys.get(reassert.match_id)
        if state is None or key is None or not key.reasserting:
            return
        key.reasserting = False
        if key.over is not None:
            state.owed.add(reassert.match_id)

    @staticmethod
    def _shadow(state: _Partition, match_id: int, key: _Key, over: int | None) -> None:
        """The newest record under ``match_id`` is at ``over`` and contradicts ``key``
        (``None``: it does not)."""
        key.over = over
        if over is None:
            state.owed.discard(match_id)
            return
        key.unanswered = True
        if not key.reasserting:
            state.owed.add(match_id)

    def advance(self, partition: int, position: int) -> list[Change]:
        """The consumer's position in ``partition`` is ``position`` (also for bad records)."""
        state = self._partitions.get(partition)
        if state is None or state.caught_up or position < state.end_offset:
            return []
        return self._catch_up(partition)

    def _catch_up(self, number: int) -> list[Change]:
        partition = self._partitions[number]
        partition.caught_up = True
        return [Follow(m) for m in sorted(partition.matches)]
