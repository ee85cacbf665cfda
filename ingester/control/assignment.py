"""The set of matches this instance follows, by config-topic partition (pure).

A replica owns the config-topic partitions the consumer group assigns to it. On
assignment it replays each partition from the beginning; until a partition is caught up
(its position reached the end offset seen at assignment) its commands only rebuild the
set, so a match added and later removed never reaches the upstream. Once caught up, the
partition's set is announced and every later command is applied as it comes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from ingester.control.commands import Command

__all__ = ["Applied", "Assignment", "Change", "Follow", "Unfollow"]


@dataclass(frozen=True, slots=True)
class Follow:
    """Start following ``match_id``."""

    match_id: int


@dataclass(frozen=True, slots=True)
class Unfollow:
    """Stop following ``match_id``."""

    match_id: int


Change = Follow | Unfollow


class Applied(StrEnum):
    """What a valid command did (a metric label)."""

    APPLIED = "applied"
    IGNORED = "ignored"  # already so: adding a followed match, removing an unknown one


@dataclass(slots=True)
class _Partition:
    end_offset: int
    matches: set[int] = field(default_factory=set)
    caught_up: bool = False


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
