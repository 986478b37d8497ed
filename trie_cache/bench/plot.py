"""The picture of a comparison run, drawn with matplotlib (in the ``bench`` extra).

Left: time to invalidate 10% of the keys against the number of keys, log-log, one line per
system. Middle: time per get (hit) and per put (new key) for each system at the table's size,
as bars on a log scale. Right, when measured: hit ratios at the same capacity
(:mod:`trie_cache.bench.hitratio`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .peers import get_system
from .toolkit import machine_line

if TYPE_CHECKING:
    from .hitratio import HitRatios

__all__ = ["PlotData", "plot", "require_matplotlib"]


class PlotData(Protocol):
    """What the picture reads of a run (:class:`trie_cache.bench.run.Results` has it)."""

    keys: int
    systems: list[str]
    #: (system, operation) -> seconds per operation
    table: dict[tuple[str, str], float]
    #: (system, n) -> seconds to invalidate 10% of n keys
    scaling: dict[tuple[str, int], float]


def require_matplotlib() -> Any:
    """The ``matplotlib.pyplot`` module on a file-only backend; SystemExit if missing."""
    try:
        import matplotlib
    except ImportError as exc:
        raise SystemExit(
            f"--plot needs matplotlib ({exc}); pip install -e '.[bench]' installs it"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _is_trie_cache(system: str) -> bool:
    return system.startswith("radix") or system == "memcache"


def plot(results: PlotData, path: str, hit_ratios: HitRatios | None = None) -> None:
    """Draw ``results`` to the image file ``path`` (its suffix picks the format); a third
    panel shows ``hit_ratios`` when given."""
    from .. import __version__
    from .._core import CORE

    plt = require_matplotlib()
    panels = 2 if hit_ratios is None else 3
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 6.4), constrained_layout=True)
    left, right = axes[0], axes[1]
    if hit_ratios is not None:
        from .hitratio import draw

        draw(axes[2], hit_ratios)
    markers = "os^vD<>phX*P"
    palette = plt.get_cmap("tab20").colors
    for i, system in enumerate(results.systems):
        points = sorted((n, t) for (s, n), t in results.scaling.items() if s == system)
        if not points:
            continue
        ns, ts = zip(*points)
        own = _is_trie_cache(system)
        left.plot(
            ns,
            [t * 1e3 for t in ts],
            marker=markers[i % len(markers)],
            color=palette[(2 * i) % 20 + (2 * i) // 20],
            linewidth=2.6 if own else 1.3,
            linestyle="-" if own else "--",
            label=get_system(system).title,
        )
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("keys in the store")
    left.set_ylabel("ms to invalidate 10% of the keys (one prefix)")
    left.set_title("Prefix invalidation vs store size (log-log, lower is better)")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)

    names = [s for s in results.systems if (s, "get") in results.table]
    width = 0.4
    xs = range(len(names))
    bars = (("get", "get (hit)", "#4c72b0"), ("put", "put (new key)", "#dd8452"))
    for offset, (op, label, color) in zip((-width / 2, width / 2), bars):
        heights = [results.table.get((s, op), float("nan")) * 1e9 for s in names]
        right.bar([x + offset for x in xs], heights, width, label=label, color=color)
    right.set_xticks(list(xs))
    right.set_xticklabels([get_system(s).title for s in names], rotation=35, ha="right", fontsize=8)
    for tick, system in zip(right.get_xticklabels(), names):
        if _is_trie_cache(system):
            tick.set_fontweight("bold")
    right.set_yscale("log")
    right.set_ylabel("ns per operation")
    right.set_title(f"get / put, {results.keys:,} keys (lower is better)")
    right.grid(True, axis="y", which="both", alpha=0.3)
    right.legend(fontsize=8)

    fig.suptitle(f"trie_cache {__version__} (core: {CORE}) vs peers: {machine_line()}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
