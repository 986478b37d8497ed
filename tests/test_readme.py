"""The code of the README's tour runs as printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def tour_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    tour = text.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", tour, re.DOTALL)


def test_the_tour_has_code() -> None:
    assert len(tour_blocks()) >= 2


@pytest.mark.parametrize("index", range(2))
def test_tour_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(tour_blocks()[index], f"README tour block {index}", "exec"), {})  # noqa: S102
    assert capsys.readouterr().out.strip()
