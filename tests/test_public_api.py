"""The public surface is documented: each public name has a docstring and is named in the README."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import trie_cache
import trie_cache.redis

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
CORE_MODULES = {"cython": "trie_cache._radix", "python": "trie_cache._radix_py"}


PUBLIC = [(trie_cache, name) for name in trie_cache.__all__] + [
    (trie_cache.redis, name) for name in trie_cache.redis.__all__
]


def public_classes() -> list[type]:
    classes = [getattr(module, name) for module, name in PUBLIC]
    classes = [c for c in classes if inspect.isclass(c) and c is not trie_cache.RadixTrie]
    classes += [importlib.import_module(m).RadixTrie for m in CORE_MODULES.values()]
    return classes


def public_members() -> list[tuple[str, str, Any]]:
    """``(class name, member name, member)`` for each public method and property a public
    class defines itself (data fields of dataclasses are documented by their class)."""
    members = []
    for cls in public_classes():
        for name, member in vars(cls).items():
            if name.startswith("_"):
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if callable(member) or isinstance(member, property):
                members.append((f"{cls.__module__}.{cls.__qualname__}", name, member))
    return members


MEMBERS = public_members()


def in_readme(name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", README) is not None


@pytest.mark.parametrize("module, name", PUBLIC, ids=[n for _, n in PUBLIC])
def test_each_public_name_is_in_the_readme(module: Any, name: str) -> None:
    assert in_readme(name), name


def documented_constant(name: str) -> bool:
    """Whether a module of the package assigns ``name`` under a ``#:`` comment."""
    for source in Path(trie_cache.__file__).parent.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        if re.search(rf"^#: .*\n{re.escape(name)}\b", text, re.MULTILINE):
            return True
    return False


@pytest.mark.parametrize("module, name", PUBLIC, ids=[n for _, n in PUBLIC])
def test_each_public_name_has_a_docstring(module: Any, name: str) -> None:
    obj = getattr(module, name)
    if inspect.isclass(obj) or callable(obj):
        assert inspect.getdoc(obj), name
    else:  # a constant: CORE, STABLE_KEY_TYPES, __version__
        assert documented_constant(name), name


@pytest.mark.parametrize("owner, name, member", MEMBERS, ids=[f"{o}.{n}" for o, n, _ in MEMBERS])
def test_each_public_method_and_property_has_its_own_docstring(
    owner: str, name: str, member: Any
) -> None:
    assert (member.__doc__ or "").strip(), f"{owner}.{name}"


@pytest.mark.parametrize("owner, name, member", MEMBERS, ids=[f"{o}.{n}" for o, n, _ in MEMBERS])
def test_each_public_method_and_property_is_in_the_readme(
    owner: str, name: str, member: Any
) -> None:
    assert in_readme(name), f"{owner}.{name}"
