"""A short soak of a bounded MemCache in a fresh interpreter, over both cores.

Mixed gets, puts of ever-new keys with new values, and prefix invalidations
(:mod:`trie_cache.bench.soak`). A cache that kept what it evicts or invalidates would grow
by tens of MiB over this run (about 78,000 puts of entries of a few hundred bytes each); a
bounded one stays within its bound and its resident set stays flat after the warm-up. This
is a behaviour check: nothing is timed. ``bench/bench_eviction.py --soak`` runs the long one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

OPS = 200_000
MAX_ENTRIES = 5_000
#: RSS growth allowed after the warm-up: allocator noise, far below a leak's tens of MiB.
SLACK = 4 << 20


def run_soak(core_name: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["TRIE_CACHE_PURE_PYTHON"] = "1" if core_name == "python" else "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trie_cache.bench.soak",
            "--ops",
            str(OPS),
            "--max-entries",
            str(MAX_ENTRIES),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_bounded_memcache_soak_keeps_its_bound_and_a_flat_rss(core_name: str) -> None:
    result = run_soak(core_name)
    assert result["core"] == core_name
    assert result["most_entries"] <= MAX_ENTRIES
    # The cache filled up many times over, so eviction ran all along.
    assert result["puts"] > 10 * MAX_ENTRIES
    assert result["evictions"] > result["puts"] // 2
    assert result["invalidations"] > 0
    assert result["hits"] > 0 and result["misses"] > 0
    after_warmup = [rss for done, rss, _ in result["samples"] if done >= result["warmup_ops"]]
    assert len(after_warmup) >= 10
    assert max(after_warmup) - after_warmup[0] <= SLACK, result["samples"]
