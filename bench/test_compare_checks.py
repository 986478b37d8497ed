"""The comparison's checks: every system passes them, and a system doing less work fails them.

Not benchmarks: run with ``python -m pytest bench/test_compare_checks.py`` (they are skipped
under ``--benchmark-only``). Small stores, so the whole file takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from trie_cache.bench import peers
from trie_cache.bench.cases import Case, CheckFailed, Unsupported

N = 1_000
BATCH = 100


def _run_rounds(case: Case, rounds: int = 2) -> None:
    case.open()
    try:
        for _ in range(rounds):
            args = case.before()
            case.check(case.run(*args))
        case.finish()
    finally:
        case.close()


@pytest.mark.parametrize(
    ("system", "operation"),
    [(name, op) for name, cls in peers.SYSTEMS.items() for op in cls.operations],
)
def test_every_system_passes_the_checks(system: str, operation: str) -> None:
    try:
        case = Case(system, operation, N, batch=BATCH, mixed_ops=300)
    except Unsupported as exc:  # its module is not installed: say so
        pytest.skip(str(exc))
    _run_rounds(case)


class _LazyInvalidate(peers.DictSystem):
    name = "lazy-invalidate"

    def invalidate(self, prefix: str) -> None:
        pass


class _GreedyInvalidate(peers.DictSystem):
    name = "greedy-invalidate"

    def invalidate(self, prefix: str) -> None:
        for k in [k for k in self.store if k.startswith(prefix[:2])]:
            del self.store[k]


class _ForgetfulPut(peers.DictSystem):
    name = "forgetful-put"

    def put_batch(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        for k, v in zip(keys[1:], values[1:]):
            self.store[k] = v


class _NoFill(peers.DictSystem):
    name = "no-fill"

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        hits = 0
        for is_write, text in ops:
            if is_write:
                self.invalidate(text)
            elif self.store.get(text) is not None:
                hits += 1
        return hits


class _WrongValue(peers.DictSystem):
    name = "wrong-value"

    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        self.store.update(zip(keys, reversed(values)))


@pytest.fixture
def cheat(request: pytest.FixtureRequest) -> Iterator[str]:
    cls: type[peers.System] = request.param
    peers.SYSTEMS[cls.name] = cls
    yield cls.name
    del peers.SYSTEMS[cls.name]


@pytest.mark.parametrize(
    ("cheat", "operation", "message"),
    [
        (_LazyInvalidate, "invalidate", "holds 1000 keys, expected 900"),
        (_GreedyInvalidate, "invalidate", "holds 0 keys, expected 900"),
        (_ForgetfulPut, "put", "holds 1099 keys, expected 1100"),
        (_NoFill, "mixed", "read hits, the model has"),
        (_WrongValue, "get", "holds CachedRows"),
    ],
    indirect=["cheat"],
)
def test_a_system_doing_less_fails_the_checks(cheat: str, operation: str, message: str) -> None:
    case = Case(cheat, operation, N, batch=BATCH, mixed_ops=300)
    with pytest.raises(CheckFailed, match=message):
        _run_rounds(case, rounds=1)
