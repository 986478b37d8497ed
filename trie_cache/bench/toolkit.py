"""The one benchmark toolkit: clocks and timed loops, figures and tables, the machine line, keys.

Every benchmark of the project measures through this module: ``python -m trie_cache.bench``
and the scripts in the repository's ``bench/`` folder. It imports nothing of trie_cache.

Timing. A figure is seconds (floats) read from a clock of :data:`CLOCKS`: ``"cpu"``, this
thread's CPU time, leaves out the time the thread spends descheduled (on a shared machine most
of the noise) but costs a system call a read; ``"wall"`` is ``time.perf_counter``, cheap to
read. :func:`timed` / :func:`timed_async` time one call with the cyclic GC paused;
:func:`best_of` keeps the best of several; :class:`Best` keeps the best figure of each name
when contenders alternate inside rounds; :func:`single_calls` times many single calls, each
after some untimed work, for a median.

Printing. A :class:`Figure` is one measured value beside its baseline, with an optional
:class:`Target`; :func:`figure_table` prints figures as one table (value, baseline, ratio,
target, PASS/MISS), :class:`Table` any other table, in text or Markdown. :func:`machine_line`
describes the machine, :func:`format_time` / :func:`format_ratio` / :func:`format_count` format
numbers.

Keys. :func:`fresh` makes an equal string that is a new object (its hash not computed, as for a
key built per request); :func:`tenant_key` / :func:`tenant_prefix` build the README's key
shape; :data:`KEY_SHAPES` are the key shapes the core benchmark measures.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLOCKS",
    "CLOCK_HELP",
    "KEY_SHAPES",
    "URL_HEAD",
    "Best",
    "Clock",
    "Column",
    "Figure",
    "KeyShape",
    "Table",
    "Target",
    "best_of",
    "clock_overhead",
    "figure_table",
    "format_count",
    "format_ratio",
    "format_time",
    "format_value",
    "fresh",
    "gc_paused",
    "machine_line",
    "median",
    "parse_count",
    "rss_bytes",
    "single_calls",
    "tenant_key",
    "tenant_prefix",
    "timed",
    "timed_async",
    "verdict_summary",
]

# --------------------------------------------------------------------------- timing

Clock = Callable[[], float]

#: The clocks a benchmark may read, by the name its ``--clock`` option takes.
CLOCKS: dict[str, Clock] = {"cpu": time.thread_time, "wall": time.perf_counter}
CLOCK_HELP = (
    "cpu: this thread's CPU time, leaving out time descheduled; wall: perf_counter (default: %s)"
)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (as ``timeit`` does), then as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def clock_overhead(clock: Clock = time.perf_counter, reads: int = 1000) -> float:
    """The least time two back-to-back reads of ``clock`` measure: their own cost."""
    best = float("inf")
    for _ in range(reads):
        t0 = clock()
        best = min(best, clock() - t0)
    return best


def timed(
    fn: Callable[..., Any], *args: Any, clock: Clock = time.perf_counter, collect: bool = False
) -> tuple[float, Any]:
    """(seconds, result) of one call ``fn(*args)`` with the GC paused; ``collect`` runs a
    collection first, outside the timing."""
    if collect:
        gc.collect()
    with gc_paused():
        t0 = clock()
        result = fn(*args)
        return clock() - t0, result


async def timed_async(
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    clock: Clock = time.perf_counter,
    collect: bool = False,
) -> tuple[float, Any]:
    """:func:`timed` for a coroutine function, awaited on the running loop."""
    if collect:
        gc.collect()
    with gc_paused():
        t0 = clock()
        result = await fn(*args)
        return clock() - t0, result


def best_of(
    repeat: int,
    run: Callable[[], Any],
    before: Callable[[], None] | None = None,
    clock: Clock = time.perf_counter,
) -> tuple[float, Any]:
    """Best time by ``clock`` of ``repeat`` calls of ``run`` (``before`` runs untimed each
    time), and the last result; the GC is paused while timing."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        if before is not None:
            before()
        elapsed, result = timed(run, clock=clock)
        best = min(best, elapsed)
    return best, result


class Best:
    """The best (least) figure of each name, for contenders timed in alternation."""

    def __init__(self) -> None:
        self.best: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> float:
        self.best[name] = min(seconds, self.best.get(name, float("inf")))
        return self.best[name]

    def __getitem__(self, name: str) -> float:
        return self.best[name]

    def __contains__(self, name: object) -> bool:
        return name in self.best


def median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def single_calls(
    call: Callable[[Any], Any],
    arguments: Sequence[Any],
    between: Callable[[int], None] | None = None,
    after: Callable[[int, Any], None] | None = None,
    clock: Clock = time.perf_counter,
) -> list[float]:
    """Seconds of each single call ``call(arguments[i])``, the clock's own cost taken off.

    ``between(i)`` runs untimed before call ``i`` (the other work a real caller does between
    two calls, so the call does not find the CPU state its own previous run left);
    ``after(i, result)`` runs untimed after it (checks, undoing what it changed). The GC is
    paused through each call.
    """
    cost = clock_overhead(clock)
    times = []
    for i, arg in enumerate(arguments):
        if between is not None:
            between(i)
        with gc_paused():
            t0 = clock()
            result = call(arg)
            t1 = clock()
        times.append(max(0.0, t1 - t0 - cost))
        if after is not None:
            after(i, result)
    return times


def rss_bytes() -> int:
    """The resident set size of this process now (the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


# --------------------------------------------------------------------------- formatting


def format_time(seconds: float) -> str:
    """``183 ns``, ``3.83 µs``, ``20.2 ms``, ``1.50 s``: three significant figures."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            break
    else:
        unit, value = "ns", seconds / 1e-9
    # Compare what would be printed, so that 99.99999 prints as "100", not "100.0".
    if round(value, 1) >= 100:
        return f"{value:,.0f} {unit}"
    if round(value, 2) >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def format_value(value: float | None, unit: str) -> str:
    """A figure in its unit: ``"s"`` (a time), ``"B"`` (bytes), ``"/s"`` (a rate)."""
    if value is None:
        return "-"
    if unit == "s":
        return format_time(value)
    if unit == "/s":
        return f"{value:,.0f} /s"
    return f"{value:,.1f} {unit}"


def format_ratio(ratio: float | None) -> str:
    """``0.75x``, ``12.3x``, ``1,782x``; below 0.01 as a fraction, ``1/41,980``."""
    if ratio is None:
        return "-"
    if ratio < 0.01:
        return f"1/{1 / ratio:,.0f}" if ratio > 0 else "0x"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


def format_count(n: int) -> str:
    """``10k``, ``1M``; other counts with thousands separators."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def parse_count(text: str, multiple_of: int = 1) -> int:
    """A count such as ``"10k"``, ``"1M"`` or ``"2_000"``: a positive multiple of
    ``multiple_of``; ValueError otherwise."""
    part = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(part[-1:], 1)
    number = part[:-1] if scale > 1 else part
    try:
        value = int(number) * scale
    except ValueError:
        raise ValueError(f"not a key count: {text!r}") from None
    if value < multiple_of or value % multiple_of:
        raise ValueError(f"key counts must be positive multiples of {multiple_of}, not {value}")
    return value


def machine_line() -> str:
    """One line on what ran the benchmark: interpreter, system, CPUs and the load now."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}){load}"
    )


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    """A table column: its title, width and alignment (``"<"`` or ``">"``)."""

    title: str
    width: int
    align: str = ">"


class Table:
    """Rows of text cells under column titles, printed aligned or as Markdown."""

    def __init__(self, columns: Sequence[Column], indent: str = "", rule: bool = True) -> None:
        self.columns = list(columns)
        self.indent = indent
        self.rule = rule
        self.rows: list[list[str] | str] = []

    def add(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def note(self, text: str) -> None:
        """A line of its own under the last row, indented past the first column."""
        self.rows.append(text)

    def _line(self, cells: Sequence[str]) -> str:
        parts = [f"{cell:{col.align}{col.width}}" for col, cell in zip(self.columns, cells)]
        return (self.indent + " ".join(parts)).rstrip()

    def lines(self, header: bool = True) -> list[str]:
        out = []
        if header:
            out.append(self._line([c.title for c in self.columns]))
            if self.rule:
                out.append(self.indent + "-" * (len(out[0]) - len(self.indent)))
        pad = self.indent + " " * (self.columns[0].width + 3)
        for row in self.rows:
            out.append(pad + row if isinstance(row, str) else self._line(row))
        return out

    def markdown(self) -> list[str]:
        out = [
            "| " + " | ".join(c.title for c in self.columns) + " |",
            "|" + "|".join("---:" if c.align == ">" else "---" for c in self.columns) + "|",
        ]
        out += ["| " + " | ".join(row) + " |" for row in self.rows if not isinstance(row, str)]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class Target:
    """A bound a figure must meet: on its ratio to the baseline (``unit="x"``) or on the
    figure itself (``unit="s"``); a ceiling unless ``at_least``."""

    limit: float
    unit: str = "x"
    at_least: bool = False

    def passes(self, value: float) -> bool:
        """Whether ``value`` (a ratio for ``unit="x"``) is within the bound."""
        return value >= self.limit if self.at_least else value <= self.limit

    def met(self, figure: Figure) -> bool | None:
        value = figure.ratio if self.unit == "x" else figure.value
        return None if value is None else self.passes(value)

    def text(self, base_name: str = "") -> str:
        sign = ">=" if self.at_least else "<="
        if self.unit == "x":
            return f"{sign} {self.limit:g}x {base_name}".rstrip()
        return f"{sign} {format_value(self.limit, self.unit)}"


@dataclass
class Figure:
    """One measured value beside its baseline: seconds (per operation or per call, unit
    ``"s"``), bytes (``"B"``) or a rate (``"/s"``, for which a higher ratio is better)."""

    name: str
    value: float
    base: float | None = None
    unit: str = "s"
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.base:
            return None
        return self.value / self.base

    def verdict(self) -> str:
        """``PASS`` or ``MISS`` against the target; empty without one."""
        if self.target is None:
            return ""
        met = self.target.met(self)
        return "" if met is None else "PASS" if met else "MISS"


def figure_table(
    figures: Sequence[Figure],
    *,
    name_title: str = "operation",
    name_width: int = 22,
    base_title: str | None = "dict",
    value_title: str = "trie",
    ratio_title: str = "ratio",
    indent: str = "",
) -> Table:
    """Figures as one table: name, baseline (unless ``base_title`` is None), value, ratio to
    the baseline, target, PASS/MISS; each figure's note on a line of its own."""
    base_name = base_title or ""
    columns = [Column(name_title, name_width, "<")]
    if base_title is not None:
        columns.append(Column(base_title, 12))
    columns += [Column(value_title, 12), Column(ratio_title, 10), Column("  target", 16, "<")]
    columns.append(Column("result", 6, "<"))
    table = Table(columns, indent)
    for f in figures:
        cells = [f.name]
        if base_title is not None:
            cells.append(format_value(f.base, f.unit))
        target = "" if f.target is None else "  " + f.target.text(base_name)
        cells += [format_value(f.value, f.unit), format_ratio(f.ratio), target, f.verdict()]
        table.add(*cells)
        if f.note:
            table.note(f.note)
    return table


def verdict_summary(figures: Sequence[Figure]) -> str:
    """``5/7 PASS; MISS: a, b`` over the figures that have a target."""
    judged = [f for f in figures if f.verdict()]
    missed = [f.name for f in judged if f.verdict() == "MISS"]
    passed = len(judged) - len(missed)
    return f"{passed}/{len(judged)} PASS" + (f"; MISS: {', '.join(missed)}" if missed else "")


# --------------------------------------------------------------------------- keys


def fresh(text: str) -> str:
    """An equal string that is a new object (its hash and UTF-8 form not computed yet).

    A one-character string may come back as itself: CPython shares those.
    """
    return text[:1] + text[1:]


def tenant_key(tenant: int, page: int, width: int = 5) -> str:
    """The README's key shape: ``tenant_{tenant:05d}/clients/page_{page}``."""
    return f"tenant_{tenant:0{width}d}/clients/page_{page}"


def tenant_prefix(tenant: int, width: int = 5) -> str:
    """The prefix of every key of ``tenant``: ``tenant_{tenant:05d}/``."""
    return f"tenant_{tenant:0{width}d}/"


@dataclass(frozen=True)
class KeyShape:
    """A key shape a cache is used with: ``stored(n)`` gives ``n`` distinct keys in the order
    they are inserted, ``misses(n, count)`` keys of the same shape that are not among them.
    Both are deterministic (seeded) and return new string objects every call."""

    name: str
    title: str
    stored: Callable[[int], list[str]]
    misses: Callable[[int, int], list[str]]


def _readme_keys(indices: Iterable[int], per_tenant: int, miss: bool = False) -> list[str]:
    half = per_tenant // 2
    out: list[str] = []
    for j in indices:
        tenant, i = divmod(j, per_tenant)
        if i < half:
            out.append(tenant_key(tenant, i + half if miss else i))
        else:
            number = i if miss else i - half
            out.append(f"{tenant_prefix(tenant)}orders/id/{number:08d}")
    return out


def _readme_stored(n: int) -> list[str]:
    order = list(range(n))
    random.Random(3).shuffle(order)
    return _readme_keys(order, -(-n // 10))


def _readme_misses(n: int, count: int) -> list[str]:
    rng = random.Random(4)
    return _readme_keys((rng.randrange(n) for _ in range(count)), -(-n // 10), miss=True)


def _uuid_keys(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [f"user:{uuid.UUID(int=rng.getrandbits(128), version=4)}" for _ in range(count)]


def _int_stored(n: int, shuffled: bool) -> list[str]:
    order = list(range(n))
    if shuffled:
        random.Random(5).shuffle(order)
    return [str(i) for i in order]


def _int_misses(n: int, count: int) -> list[str]:
    rng = random.Random(6)
    return [str(n + rng.randrange(n)) for _ in range(count)]


def _random_ints(seed: int, count: int, exclude: set[str] | None = None) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        key = str(rng.getrandbits(63))
        if key in seen or (exclude is not None and key in exclude):
            continue
        seen.add(key)
        out.append(key)
    return out


def _random_int_misses(n: int, count: int) -> list[str]:
    return _random_ints(8, count, exclude=set(_random_ints(7, n)))


#: The shared head of every URL key: 150 characters.
URL_HEAD = (
    "https://api.shop.example.com/v3/catalogue/regions/europe-west-2/stores/berlin-mitte-0042/"
    "departments/home-and-garden/categories/outdoor-furniture-and-accessories/"
)[:149] + "/"


def _urls(seed: int, count: int) -> list[str]:
    """About 216 characters: the 150-character head, then an item path and a query."""
    rng = random.Random(seed)
    return [
        f"{URL_HEAD}items/{rng.getrandbits(40):012x}/variants"
        f"?colour={rng.choice(('red', 'green', 'blue', 'black'))}&size={rng.randrange(60)}"
        f"&page={rng.randrange(100_000)}&lang=en"
        for _ in range(count)
    ]


_CITIES = ("Zürich", "Kraków", "Москва", "東京", "São Paulo", "Αθήνα", "القاهرة", "Reykjavík")
_WORDS = ("клиент", "página", "注文", "straße", "ürün", "σελίδα")


def _non_ascii(seed: int, count: int, start: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(_CITIES)}/{rng.choice(_WORDS)}/{i}" for i in range(start, start + count)]


def _non_ascii_stored(n: int) -> list[str]:
    keys = _non_ascii(9, n)
    random.Random(10).shuffle(keys)
    return keys


#: The key shapes of the core benchmark, by name.
KEY_SHAPES: dict[str, KeyShape] = {
    shape.name: shape
    for shape in (
        KeyShape(
            "readme",
            "tenant_XXXXX/clients/page_i, .../orders/id/i (10 tenants, shuffled)",
            _readme_stored,
            _readme_misses,
        ),
        KeyShape(
            "uuid", "user:{uuid4}", lambda n: _uuid_keys(11, n), lambda n, c: _uuid_keys(12, c)
        ),
        KeyShape("seq", "str(i), in order", lambda n: _int_stored(n, False), _int_misses),
        KeyShape("shuffled", "str(i), shuffled", lambda n: _int_stored(n, True), _int_misses),
        KeyShape(
            "randint",
            "random 63-bit integers as str",
            lambda n: _random_ints(7, n),
            _random_int_misses,
        ),
        KeyShape(
            "url",
            "~216-char URLs, 150-char shared head",
            lambda n: _urls(13, n),
            lambda n, c: _urls(14, c),
        ),
        KeyShape(
            "nonascii",
            "non-ASCII text: {city}/{word}/{i}",
            _non_ascii_stored,
            lambda n, c: _non_ascii(15, c, start=n),
        ),
    )
}
