"""What a user of the published package relies on: generics at runtime and one version number."""

from __future__ import annotations

import importlib.metadata
import re
import typing
from pathlib import Path
from typing import Any

import pytest

import trie_cache

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_radix_trie_is_subscriptable_at_runtime(trie_cls: Any) -> None:
    alias = trie_cls[int]
    assert typing.get_origin(alias) is trie_cls
    assert typing.get_args(alias) == (int,)
    assert alias({"a": 1}) == {"a": 1}
    assert type(alias()) is trie_cls


def test_a_module_level_annotation_runs_with_the_default_core() -> None:
    # Without ``from __future__ import annotations`` a module-level annotation is evaluated.
    code = "from trie_cache import RadixTrie\nt: RadixTrie[int] = RadixTrie({'a': 1})\n"
    namespace: dict[str, Any] = {}
    exec(compile(code, "<annotated module>", "exec", dont_inherit=True), namespace)  # noqa: S102
    assert namespace["__annotations__"]["t"] == trie_cache.RadixTrie[int]


def test_the_version_is_kept_in_one_place() -> None:
    # pyproject.toml reads it from trie_cache.__version__ (text checks: tomllib is 3.11+).
    text = PYPROJECT.read_text(encoding="utf-8")
    project = text.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^version\s*=", project, re.MULTILINE) is None
    assert re.search(r'^dynamic = \["version"\]$', project, re.MULTILINE)
    assert 'version = { attr = "trie_cache.__version__" }' in text
    assert re.fullmatch(r"\d+\.\d+\.\d+", trie_cache.__version__)


def test_the_installed_metadata_has_the_package_version() -> None:
    try:
        installed = importlib.metadata.version("trie_cache")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("trie_cache is imported from a checkout that was never installed")
    assert installed == trie_cache.__version__
