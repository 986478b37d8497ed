"""``python -m trie_cache.bench``: a short comparison against the caches installed here.

For every system: one store of ``--keys`` keys serves the get, miss, put and invalidate
cases; the mixed workload fills a store of its own; invalidation is also timed at each of
``--sizes`` for the scaling picture. Every timed round is checked afterwards (see
:mod:`trie_cache.bench.cases`). Prints one table, operation x system, with each time and its
ratio to trie_cache measured in the same run; ``--plot FILE.png`` draws the picture.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TextIO

from .. import __version__
from .._core import CORE
from . import hitratio
from .cases import OPERATION_TITLES, Case, Unsupported, open_store
from .peers import SYSTEMS, System, get_system, missing_reason
from .toolkit import (
    Column,
    Table,
    best_of,
    format_count,
    format_ratio,
    format_time,
    machine_line,
)
from .workloads import MIXED_PAGES, key, parse_count

__all__ = ["Results", "main", "render", "render_markdown"]

DEFAULT_KEYS = 10_000
DEFAULT_SIZES = (1_000, 10_000, 100_000)
DEFAULT_BATCH = 2_000
DEFAULT_MIXED_OPS = 1_000
DEFAULT_REPEAT = 3
#: A store whose fill is estimated to take longer than this many seconds is not made.
DEFAULT_FILL_BUDGET = 5.0


@dataclass
class Results:
    """Everything one run measured; times in seconds (per operation where it applies)."""

    keys: int
    sizes: list[int]
    batch: int
    mixed_ops: int
    repeat: int
    systems: list[str]
    #: (system, operation) -> seconds per operation (invalidate: per call)
    table: dict[tuple[str, str], float] = field(default_factory=dict)
    #: (system, n) -> seconds to invalidate 10% of n keys
    scaling: dict[tuple[str, int], float] = field(default_factory=dict)
    #: system -> why it did not run at all
    skipped: dict[str, str] = field(default_factory=dict)
    #: (system, what) -> why that part did not run
    gaps: dict[tuple[str, str], str] = field(default_factory=dict)
    hit_rate: float | None = None
    #: system -> seconds per key of its last fill
    fill_rate: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0

    def ratio(self, system: str, operation: str) -> float | None:
        base = get_system(system).baseline
        mine = self.table.get((system, operation))
        theirs = self.table.get((base, operation))
        if mine is None or theirs is None or theirs <= 0:
            return None
        return mine / theirs


# -- formatting ---------------------------------------------------------------------------


def _cell(results: Results, system: str, op: str, markdown: bool) -> str:
    t = results.table.get((system, op))
    if t is None:
        return "—" if markdown else "-"
    ratio = results.ratio(system, op)
    if ratio is None:
        return format_time(t)
    if markdown:
        return f"{format_time(t)} ({format_ratio(ratio).replace('x', '×')})"
    return f"{format_time(t)} {format_ratio(ratio):>7}"


def tables(results: Results, markdown: bool = False) -> tuple[Table, Table]:
    """The operation x system table and the invalidation scaling table of a run."""
    name_width = max(len(get_system(s).title) for s in results.systems) + 1
    ops = list(OPERATION_TITLES)
    main = Table(
        [Column("system", name_width, "<")] + [Column(OPERATION_TITLES[op], 17) for op in ops]
    )
    for system in results.systems:
        main.add(get_system(system).title, *(_cell(results, system, op, markdown) for op in ops))
    title = "invalidate 10% (one call)" if markdown else "system"
    scaling = Table(
        [Column(title, name_width, "<")]
        + [Column(f"n={format_count(n)}", 11) for n in results.sizes]
    )
    for system in results.systems:
        times = [results.scaling.get((system, n)) for n in results.sizes]
        missing = "—" if markdown else "-"
        scaling.add(
            get_system(system).title, *(missing if t is None else format_time(t) for t in times)
        )
    return main, scaling


def render(results: Results) -> str:
    """The report: header, the operation x system table, invalidation scaling, notes."""
    lines = [
        f"trie_cache {__version__} comparison (core: {CORE})",
        machine_line(),
        (
            f"{results.keys:,} keys like {key(12_345)!r}; get/put rounds of {results.batch:,} "
            f"fresh key strings; best of {results.repeat} rounds (invalidation at up to 10k "
            f"keys: {_scaling_repeat(10_000, results.repeat)}), gc off while timing; every "
            "round checked afterwards; async systems timed inside the running event loop"
        ),
        (
            "ratio = time / trie_cache's time in this run (sync systems against RadixTrie, "
            "async against MemCache); above 1: trie_cache is faster"
        ),
        "",
    ]
    main, scaling = tables(results)
    lines += main.lines()
    lines.append("")
    lines.append(
        "get/put/mixed: time per operation; invalidate 10%: one call dropping the "
        f"{results.keys // 10:,} keys under one prefix."
    )
    if results.hit_rate is not None:
        n_tables = results.keys // MIXED_PAGES
        lines.append(
            f"mixed: {results.mixed_ops:,} operations on {n_tables:,} tables x {MIXED_PAGES} "
            f"pages: 90% page reads (a miss is filled by a put), 10% writes invalidating "
            f"their table; hit rate {100 * results.hit_rate:.1f}% for every system."
        )
    if results.scaling:
        lines += ["", "invalidate 10% of n keys (one call):", *scaling.lines()]
    lines += ["", "how each system drops a prefix:"]
    for system in results.systems:
        cls = get_system(system)
        lines.append(f"  {cls.title}: {cls.how}")
    if results.skipped or results.gaps:
        lines += ["", "not measured:"]
        for system, reason in results.skipped.items():
            lines.append(f"  {get_system(system).title}: {reason}")
        for (system, what), reason in results.gaps.items():
            lines.append(f"  {get_system(system).title}, {what}: {reason}")
    lines += ["", f"run took {results.elapsed:.1f} s"]
    return "\n".join(lines)


def render_markdown(results: Results) -> str:
    """The same tables as :func:`render`, in Markdown (for the README)."""
    main, scaling = tables(results, markdown=True)
    return "\n".join([*main.markdown(), "", *scaling.markdown()])


# -- progress -----------------------------------------------------------------------------


class Progress:
    """A progress bar on stderr: tqdm's when installed, a plain counter otherwise."""

    def __init__(self, total: int, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self._bar: Any = None
        self._done = 0
        self._total = total
        self._stream = stream
        self._enabled = enabled
        if not enabled:
            return
        try:
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, file=stream, unit="case", dynamic_ncols=True, leave=False)

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Show ``label`` while the block runs; count it done after."""
        if self._bar is not None:
            self._bar.set_postfix_str(label)
        elif self._enabled:
            self._stream.write(f"\r[{self._done + 1}/{self._total}] {label:<50}")
            self._stream.flush()
        yield
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._enabled:
            self._stream.write("\r" + " " * 60 + "\r")
            self._stream.flush()


# -- measuring ----------------------------------------------------------------------------


def measure(case: Case, repeat: int) -> float:
    """Best-of-``repeat`` time of ``case`` (per operation), each round checked."""
    best = float("inf")
    for _ in range(repeat):
        args = case.before()
        elapsed, result = best_of(1, partial(case.run, *args), clock=case.clock)
        case.check(result)
        best = min(best, elapsed)
    case.finish()
    return best / case.ops


@contextmanager
def _store(system: str, n: int, batch: int, results: Results) -> Iterator[System | None]:
    """A filled store, or ``None`` (with the reason recorded) if it may not be made."""
    store: System | None = None
    try:
        start = time.perf_counter()
        store = open_store(system, n, batch)
        results.fill_rate[system] = (time.perf_counter() - start) / n
    except Unsupported as exc:
        results.gaps[(system, f"n={format_count(n)}")] = str(exc)
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def _over_budget(system: str, n: int, results: Results, budget: float) -> str | None:
    rate = results.fill_rate.get(system)
    if rate is None or rate * n <= budget:
        return None
    return (
        f"filling {n:,} keys would take about {rate * n:.0f} s at the rate measured here "
        f"({1e6 * rate:.0f} µs a key); --fill-budget {budget:g} s"
    )


def run(
    systems: Sequence[str],
    keys: int,
    sizes: Sequence[int],
    batch: int,
    mixed_ops: int,
    repeat: int,
    fill_budget: float,
    progress: Callable[[int], Progress],
) -> Results:
    start = time.perf_counter()
    results = Results(keys, sorted(set(sizes)), batch, mixed_ops, repeat, [])
    for system in systems:
        reason = missing_reason(get_system(system))
        if reason is None:
            results.systems.append(system)
        else:
            results.skipped[system] = reason
    per_system = len(OPERATION_TITLES) + len(results.sizes)
    bar = progress(per_system * len(results.systems))
    try:
        for system in results.systems:
            _run_system(system, results, fill_budget, bar)
    finally:
        bar.close()
    results.elapsed = time.perf_counter() - start
    return results


def _run_system(system: str, results: Results, fill_budget: float, bar: Progress) -> None:
    cls = get_system(system)
    title = cls.title
    with _store(system, results.keys, results.batch, results) as store:
        for op in OPERATION_TITLES:
            if op == "mixed":
                continue
            with bar.step(f"{title}: {OPERATION_TITLES[op]}"):
                if op not in cls.operations or store is None:
                    continue
                try:
                    case = Case(system, op, results.keys, batch=results.batch)
                except Unsupported as exc:
                    results.gaps[(system, OPERATION_TITLES[op])] = str(exc)
                    continue
                case.open(store)
                repeat = results.repeat
                if op == "invalidate":
                    repeat = _scaling_repeat(results.keys, repeat)
                results.table[(system, op)] = measure(case, repeat)
    if (system, "invalidate") in results.table:
        results.scaling[(system, results.keys)] = results.table[(system, "invalidate")]

    with bar.step(f"{title}: mixed workload"):
        if "mixed" in cls.operations:
            _run_mixed(system, results, fill_budget)

    for n in results.sizes:
        with bar.step(f"{title}: invalidate n={format_count(n)}"):
            if (system, n) in results.scaling or "invalidate" not in cls.operations:
                continue
            too_slow = _over_budget(system, n, results, fill_budget)
            if too_slow is not None:
                results.gaps[(system, f"invalidate at n={format_count(n)}")] = too_slow
                continue
            with _store(system, n, results.batch, results) as sized:
                if sized is None:
                    continue
                case = Case(system, "invalidate", n, batch=results.batch)
                case.open(sized)
                results.scaling[(system, n)] = measure(case, _scaling_repeat(n, results.repeat))


def _scaling_repeat(n: int, repeat: int) -> int:
    # A small store invalidates in microseconds: more rounds, cheap, steadier minimum.
    return repeat + 2 if n <= 10_000 else repeat


def _run_mixed(system: str, results: Results, fill_budget: float) -> None:
    too_slow = _over_budget(system, results.keys, results, fill_budget)
    if too_slow is not None:
        results.gaps[(system, "mixed")] = too_slow
        return
    try:
        case = Case(system, "mixed", results.keys, mixed_ops=results.mixed_ops)
    except Unsupported as exc:
        results.gaps[(system, "mixed")] = str(exc)
        return
    case.open()
    try:
        results.table[(system, "mixed")] = measure(case, results.repeat)
    finally:
        case.close()
    stream = case.stream
    if stream is not None:
        results.hit_rate = stream.expected_hits / stream.reads


# -- command line -------------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    try:
        return [parse_count(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    values = _counts(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one key count, not {text!r}")
    return values[0]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trie_cache.bench",
        description="Compare trie_cache with the caches installed here (pip install -e "
        "'.[bench]' installs them). TRIE_CACHE_PURE_PYTHON=1 runs the pure-Python core.",
    )
    p.add_argument(
        "--keys",
        type=_count,
        default=DEFAULT_KEYS,
        help=f"keys per store for the table (default {DEFAULT_KEYS:,})",
    )
    p.add_argument(
        "--sizes",
        type=_counts,
        default=list(DEFAULT_SIZES),
        help="store sizes for the invalidation scaling, comma separated (default 1k,10k,100k)",
    )
    p.add_argument(
        "--batch",
        type=_positive,
        default=DEFAULT_BATCH,
        help=f"keys per get/put round (default {DEFAULT_BATCH:,})",
    )
    p.add_argument(
        "--mixed-ops",
        type=_positive,
        default=DEFAULT_MIXED_OPS,
        help=f"operations in the mixed workload (default {DEFAULT_MIXED_OPS:,})",
    )
    p.add_argument(
        "--repeat",
        type=_positive,
        default=DEFAULT_REPEAT,
        help=f"rounds per case, the best is kept (default {DEFAULT_REPEAT})",
    )
    p.add_argument(
        "--systems",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        default=list(SYSTEMS),
        help=f"systems to run, comma separated (default all: {','.join(SYSTEMS)})",
    )
    p.add_argument(
        "--fill-budget",
        type=float,
        default=DEFAULT_FILL_BUDGET,
        help="skip a store whose fill would take longer than this many seconds "
        f"(default {DEFAULT_FILL_BUDGET:g})",
    )
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw invalidation time vs keys and get/put bars to this file",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    hitratio.add_arguments(p)
    p.add_argument("--markdown", action="store_true", help="also print the tables in Markdown")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for name in args.systems:
        if name not in SYSTEMS:
            parser().error(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}")
    for base in ("radix", "memcache"):
        if base not in args.systems:
            args.systems.insert(0 if base == "radix" else 1, base)
    if args.keys not in args.sizes:
        args.sizes.append(args.keys)
    if args.plot:
        # Fail before the run, not after it, when the plotting library is missing.
        from .plot import require_matplotlib

        require_matplotlib()
    results = run(
        args.systems,
        args.keys,
        args.sizes,
        args.batch,
        args.mixed_ops,
        args.repeat,
        args.fill_budget,
        lambda total: Progress(total, enabled=not args.no_progress),
    )
    bar = Progress(1, enabled=not args.no_progress)
    hits = hitratio.from_args(args, bar.step)
    bar.close()
    print(render(results))
    if hits is not None:
        print()
        print(hitratio.render(hits))
    if args.markdown:
        print()
        print(render_markdown(results))
        if hits is not None:
            print()
            print(hitratio.render_markdown(hits))
    if args.plot:
        from .plot import plot

        plot(results, args.plot, hit_ratios=hits)
        print(f"picture written to {args.plot}")
    return 0
