"""Shared fixtures: every trie test runs over both cores.

``--no-cython`` deselects the compiled leg (for a machine without a compiler); without it a
missing extension fails the compiled leg instead of hiding it.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

CORES = ("cython", "python")
_MODULES = {"cython": "trie_cache._radix", "python": "trie_cache._radix_py"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-cython",
        action="store_true",
        default=False,
        help="run only the pure-Python core",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--no-cython"):
        return
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and (
            callspec.params.get("core_name") == "cython"
            or callspec.params.get("cache_backend") == "mem-cython"
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=CORES)
def core_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def trie_cls(core_name: str) -> Any:
    """The ``RadixTrie`` class of one core; import errors surface as failures."""
    return importlib.import_module(_MODULES[core_name]).RadixTrie


# -- cache backends (tests/test_cache_contract.py, tests/test_read_through.py) -----------------
# Backends that store: the contract tests run over these. To add one, append its name here and
# a branch to ``_make_cache`` (``path`` is a fresh temporary directory).
STORING_BACKENDS = ["mem-cython", "mem-python", "lmdb"]
ALL_BACKENDS = [*STORING_BACKENDS, "nocache"]


def _make_cache(name: str, path: Path, **kwargs: Any) -> Any:
    from trie_cache import MemCache, NoCache

    if name.startswith("mem-"):
        trie_cls = importlib.import_module(_MODULES[name[4:]]).RadixTrie
        return MemCache(_trie_cls=trie_cls, **kwargs)
    if name == "nocache":
        return NoCache(**kwargs)
    if name == "lmdb":
        from trie_cache import LmdbCache

        return LmdbCache(path, durable=False, **kwargs)
    raise ValueError(f"unknown cache backend {name!r}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "also_nocache: run this cache test on NoCache too, besides STORING_BACKENDS"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cache_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "also_nocache"
    ):
        # As a parametrize mark, so that it takes the place of the fixture's own params.
        metafunc.definition.add_marker(
            pytest.mark.parametrize("cache_backend", ALL_BACKENDS, indirect=True)
        )


@pytest.fixture(params=STORING_BACKENDS)
def cache_backend(request: pytest.FixtureRequest) -> str:
    """A backend name: each of STORING_BACKENDS, and "nocache" under ``also_nocache``."""
    return str(request.param)


@pytest.fixture
async def make_cache(cache_backend: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``make_cache(**kwargs)`` builds a fresh cache of the backend under test."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        path = tmp_path / f"cache{len(made)}"
        path.mkdir()
        made.append(_make_cache(cache_backend, path, **kwargs))
        return made[-1]

    yield make
    for cache in made:
        await cache.aclose()


@pytest.fixture
def cache(make_cache: Callable[..., Any]) -> Any:
    """A fresh cache of each storing backend."""
    return make_cache()
