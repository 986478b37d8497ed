"""Which radix trie core ``import trie_cache`` picks, checked in fresh interpreters.

A silent fall-back to the pure-Python twin would hide a broken build and make every
benchmark lie, so the default must be the compiled core.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path

import pytest

import trie_cache

# Where the tested trie_cache was imported from (the checkout, or site-packages for an install):
# the probes import the same one.
ROOT = Path(trie_cache.__file__).resolve().parent.parent
PROBE = (
    "import trie_cache, trie_cache._core as c; "
    "print(trie_cache.CORE, c.PURE_PYTHON_REQUESTED, trie_cache.RadixTrie.__module__)"
)


def probe(env_value: str | None, code: str = PROBE) -> list[str]:
    """What ``code`` prints (by default ``CORE``, whether the twin was requested, and the
    module of ``RadixTrie``) with the variable set to ``env_value`` (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != "TRIE_CACHE_PURE_PYTHON"}
    if env_value is not None:
        env["TRIE_CACHE_PURE_PYTHON"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


# ``core_name`` marks the tests that need the compiled core, so ``--no-cython`` drops them.
@pytest.mark.parametrize("core_name", ["cython"])
def test_compiled_core_is_the_default(core_name: str) -> None:
    assert probe(None) == ["cython", "False", "trie_cache._radix"]


@pytest.mark.parametrize("core_name", ["cython"])
@pytest.mark.parametrize("value", ["0", "no"])
def test_other_values_do_not_force_the_twin(core_name: str, value: str) -> None:
    assert probe(value) == ["cython", "False", "trie_cache._radix"]


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_true_values_force_the_twin(value: str) -> None:
    assert probe(value) == ["python", "True", "trie_cache._radix_py"]


CODEC_MODULE = "import trie_cache._core as c; print(c.rows_from_map.__module__)"


@pytest.mark.parametrize("core_name", ["cython"])
def test_compiled_row_codec_is_the_default(core_name: str) -> None:
    assert probe(None, CODEC_MODULE) == ["trie_cache._rowcodec"]


def test_the_switch_picks_the_row_codec_twin_too() -> None:
    assert probe("1", CODEC_MODULE) == ["trie_cache._rowcodec_py"]


@pytest.mark.parametrize("value", ["0", "false"])
def test_other_values_do_not_request_the_twin(value: str) -> None:
    assert probe(value)[1] == "False"


def test_the_chosen_trie_is_a_mutable_mapping() -> None:
    assert isinstance(trie_cache.RadixTrie(), MutableMapping)


BOTH_ARE_MAPPINGS = (
    "from collections.abc import MutableMapping; "
    "import trie_cache._radix as c, trie_cache._radix_py as p; "
    "print(*[isinstance(m.RadixTrie(), MutableMapping) and m.RadixTrie({'a': 1}) == "
    "m.RadixTrie({'a': 1}) for m in (c, p)])"
)


@pytest.mark.parametrize("core_name", ["cython"])
@pytest.mark.parametrize("value", [None, "1"])
def test_both_cores_are_mappings_whichever_is_chosen(core_name: str, value: str | None) -> None:
    # Equality between tries goes through the Mapping ABC, so the core that is not
    # chosen must be registered too.
    assert probe(value, BOTH_ARE_MAPPINGS) == ["True", "True"]
