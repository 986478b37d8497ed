"""Shared fixtures: every trie test runs over both cores.

``--no-cython`` deselects the compiled leg (for a machine without a compiler); without it a
missing extension fails the compiled leg instead of hiding it.
"""

from __future__ import annotations

import importlib
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
        if callspec is not None and callspec.params.get("core_name") == "cython":
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
