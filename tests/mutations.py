"""Random edits of JSON-shaped values, shared by the fuzz tests of convert/encode and frames."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def containers(value: Any, found: list[Any] | None = None) -> list[Any]:
    """Every dict and list inside ``value`` (itself included), depth first."""
    found = [] if found is None else found
    if isinstance(value, dict | list):
        found.append(value)
        for child in value.values() if isinstance(value, dict) else value:
            containers(child, found)
    return found


def mutate(
    draw: st.DrawFn,
    root: Any,
    values: st.SearchStrategy[Any],
    max_edits: int,
    nested: st.SearchStrategy[Any] | None = None,
) -> None:
    """Apply up to ``max_edits`` deletions, replacements and additions inside ``root``.

    Replacements and additions draw from ``values``; with ``nested``, a dict value may also
    be replaced by a deeply nested one drawn from it.
    """
    actions = ["delete", "replace", "add"] + (["nest"] if nested is not None else [])
    for _ in range(draw(st.integers(min_value=0, max_value=max_edits))):
        target = draw(st.sampled_from(containers(root)))
        action = draw(st.sampled_from(actions))
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            if action == "delete":
                del target[key]
            elif action == "replace":
                target[key] = draw(values)
            elif action == "nest" and nested is not None:
                target[key] = draw(nested)
            else:
                target[draw(st.text(max_size=8))] = draw(values)
        elif isinstance(target, list) and target:
            index = draw(st.integers(min_value=0, max_value=len(target) - 1))
            if action == "delete":
                del target[index]
            else:
                target[index] = draw(values)
