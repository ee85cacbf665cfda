"""``docs/consuming.md`` shows only code the suite runs: each excerpt is cut from an example.

Every fenced ``java``, ``go`` or ``python`` block must follow a ``<!-- from PATH#NAME -->``
line and equal, verbatim (indentation removed), the lines between ``--8<-- [start:NAME]`` and
``--8<-- [end:NAME]`` in that file of the repository.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.examples.builds import REPO

DOC = REPO / "docs" / "consuming.md"
CODE = ("java", "go", "python")
BLOCK = re.compile(r"(?:<!-- from (?P<source>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)


def excerpt(source: str) -> str:
    """The marked region ``NAME`` of ``PATH#NAME``, dedented, markers excluded."""
    path, name = source.split("#")
    lines = (REPO / path).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if f"--8<-- [start:{name}]" in line)
    end = next(i for i, line in enumerate(lines) if f"--8<-- [end:{name}]" in line)
    return textwrap.dedent("\n".join(lines[start + 1 : end])).strip("\n") + "\n"


def blocks() -> list[tuple[str | None, str, str]]:
    """(source, language, body) of every fenced block of the page."""
    return [(m["source"], m["lang"], m["body"]) for m in BLOCK.finditer(DOC.read_text())]


def test_the_page_shows_code_of_every_example() -> None:
    sources = {source.split("#")[0] for source, _, _ in blocks() if source}
    assert sources == {
        "examples/java/src/main/java/com/sportrix/examples/LiveScoresConsumer.java",
        "examples/java/src/main/java/com/sportrix/examples/GenericDecoding.java",
        "examples/java/src/main/java/com/sportrix/examples/SpecificDecoding.java",
        "examples/go/main.go",
        "examples/python/live_scores_consumer.py",
    }


@pytest.mark.parametrize(
    ("source", "lang", "body"),
    [b for b in blocks() if b[1] in CODE or b[0]],
    ids=lambda v: v if isinstance(v, str) and "#" in v else "",
)
def test_each_code_block_is_an_excerpt_of_a_tested_file(
    source: str | None, lang: str, body: str
) -> None:
    assert source is not None, f"a {lang} block of docs/consuming.md names no source:\n{body}"
    assert body == excerpt(source), f"docs/consuming.md differs from {source}"
