"""The benchmark toolkit (``trie_cache.bench.toolkit``) and the scripts built on it.

Not benchmarks: run with ``python -m pytest bench/test_toolkit.py`` (skipped under
``--benchmark-only``). The script runs use tiny sizes, so the file takes seconds.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trie_cache.bench import toolkit
from trie_cache.bench.toolkit import (
    KEY_SHAPES,
    URL_HEAD,
    Figure,
    Target,
    figure_table,
    format_count,
    format_ratio,
    format_time,
    fresh,
    parse_count,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(183e-9, "183 ns"), (3.83e-6, "3.83 µs"), (20.2e-3, "20.2 ms"), (1.5, "1.50 s")],
)
def test_format_time_keeps_three_figures(seconds: float, text: str) -> None:
    assert format_time(seconds) == text


@pytest.mark.parametrize(
    ("ratio", "text"),
    [(0.754, "0.75x"), (12.34, "12.3x"), (1782.4, "1,782x"), (1 / 41980, "1/41,980")],
)
def test_format_ratio(ratio: float, text: str) -> None:
    assert format_ratio(ratio) == text


def test_counts_parse_and_format_back() -> None:
    assert parse_count("20k") == 20_000 and parse_count("1M") == 1_000_000
    assert format_count(parse_count("2_000")) == "2k"
    with pytest.raises(ValueError, match="multiples of 10"):
        parse_count("15", multiple_of=10)
    with pytest.raises(ValueError, match="not a key count"):
        parse_count("many")


def test_a_target_on_a_ratio_and_on_a_time() -> None:
    fast = Figure("get", value=80e-9, base=100e-9, target=Target(1.0))
    slow = Figure("put", value=130e-9, base=100e-9, target=Target(1.2))
    floor = Figure("puts", value=6.0, base=1.0, unit="/s", target=Target(5.0, at_least=True))
    bound = Figure("median", value=1.5e-6, target=Target(1e-6, "s"))
    assert [f.verdict() for f in (fast, slow, floor, bound)] == ["PASS", "MISS", "PASS", "MISS"]
    assert Figure("replace", value=1.0, base=2.0).verdict() == ""
    assert Target(1.2).text("dict") == "<= 1.2x dict"
    assert Target(1e-6, "s").text() == "<= 1.00 µs"


def test_figure_table_prints_value_base_ratio_target_and_verdict() -> None:
    figure = Figure("get, hit", 120e-9, 100e-9, target=Target(1.0), note="fresh probes")
    lines = figure_table([figure]).lines()
    assert lines[0].split() == ["operation", "dict", "trie", "ratio", "target", "result"]
    assert lines[2].split() == ["get,", "hit", "100", "ns", "120", "ns", "1.20x"] + [
        "<=",
        "1x",
        "dict",
        "MISS",
    ]
    assert lines[3].strip() == "fresh probes"
    markdown = figure_table([figure]).markdown()
    assert markdown[2] == "| get, hit | 100 ns | 120 ns | 1.20x |   <= 1x dict | MISS |"


def test_timed_pauses_the_collector_and_restores_it() -> None:
    seen = []

    def probe() -> int:
        seen.append(gc.isenabled())
        return 7

    elapsed, result = toolkit.timed(probe)
    assert result == 7 and seen == [False] and gc.isenabled() and elapsed >= 0


def test_single_calls_run_the_untimed_work_around_each_call() -> None:
    log: list[str] = []

    def call(x: int) -> int:
        log.append(f"call {x}")
        return x * 2

    times = toolkit.single_calls(
        call,
        [1, 2],
        between=lambda i: log.append(f"before {i}"),
        after=lambda i, r: log.append(f"after {i}: {r}"),
    )
    assert log == ["before 0", "call 1", "after 0: 2", "before 1", "call 2", "after 1: 4"]
    assert len(times) == 2 and min(times) >= 0


def test_fresh_makes_an_equal_new_string() -> None:
    key = "tenant_00001/clients/page_7"
    copy = fresh(key)
    assert copy == key and copy is not key


@pytest.mark.parametrize("name", sorted(KEY_SHAPES))
def test_every_key_shape_gives_distinct_keys_and_misses_apart(name: str) -> None:
    shape = KEY_SHAPES[name]
    stored = shape.stored(2_000)
    misses = shape.misses(2_000, 500)
    assert len(stored) == len(set(stored)) == 2_000
    assert len(misses) == 500 and not set(misses) & set(stored)
    assert shape.stored(2_000) == stored  # seeded: the same keys every run


def test_url_keys_share_a_150_character_head_and_average_216() -> None:
    urls = KEY_SHAPES["url"].stored(1_000)
    assert len(URL_HEAD) == 150 and all(u.startswith(URL_HEAD) for u in urls)
    assert 200 <= sum(map(len, urls)) / len(urls) <= 230
    assert all(not k.isascii() for k in KEY_SHAPES["nonascii"].stored(100))


def _script(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return done.stdout


def test_core_bench_prints_every_shape_with_ratios_and_verdicts() -> None:
    from trie_cache import CORE  # the core this run picked (TRIE_CACHE_PURE_PYTHON=1: python)

    out = _script(
        "bench/core_bench.py", "--core", CORE, "--keys", "40", "--quick", "--probes", "20"
    )
    for name, shape in KEY_SHAPES.items():
        assert f"== {shape.title}: 40 keys ==" in out
        assert any(line.startswith(f"{name} ") for line in out.splitlines())
    assert "await get, hit" in out and "invalidate_prefix, one tenant" in out
    assert "memory per entry" in out and "PASS" in out
    assert "Targets (for the compiled core):" in out


def test_bench_lmdb_runs_through_the_toolkit(tmp_path: Path) -> None:
    out = _script(
        "bench/bench_lmdb.py", "--keys", "100", "--probes", "50", "--puts", "10", "--rounds", "1"
    )
    assert "LmdbCache.get, hit" in out and "x raw  target <= 1.2x raw: " in out
    assert "invalidate one tenant" in out and "put throughput" in out
    assert "CPUs" in out  # the machine line
