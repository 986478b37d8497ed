"""A compiled core that fails to import is never silent (checked in fresh interpreters).

Each test copies the imported ``trie_cache`` package (installed or in place) into a temporary
folder put first on ``PYTHONPATH``, replaces the compiled trie with a file the dynamic loader
rejects, and imports the copy: the import fails for real, in the loader.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import trie_cache
from trie_cache._core import PURE_BUILD_MARKER

pytestmark = pytest.mark.skipif(
    platform.python_implementation() != "CPython", reason="only CPython has the compiled core"
)

PROBE = "import trie_cache; print(trie_cache.CORE)"


def shadow_package(root: Path) -> Path:
    """A copy of ``trie_cache`` under ``root`` whose compiled trie cannot be loaded."""
    package = root / "trie_cache"
    shutil.copytree(
        Path(trie_cache.__file__).parent,
        package,
        ignore=shutil.ignore_patterns("__pycache__", PURE_BUILD_MARKER),
    )
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    (package / f"_radix{suffix}").write_bytes(b"this is not a shared object\n")
    return package


def run(
    root: Path, warnings: str = "default", **env_values: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRIE_CACHE_PURE_PYTHON"}
    env.update(env_values)
    env["PYTHONPATH"] = str(root)
    return subprocess.run(
        [sys.executable, "-W", warnings, "-c", PROBE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_broken_compiled_core_warns_and_names_the_error(tmp_path: Path) -> None:
    shadow_package(tmp_path)
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["python"]
    assert "RuntimeWarning: trie_cache: the compiled core failed to import (ImportError: " in (
        done.stderr
    )
    # The loader's own message, with the path of the rejected file.
    assert f"_radix{sysconfig.get_config_var('EXT_SUFFIX')}" in done.stderr
    assert "20-25x slower" in done.stderr


def test_the_warning_is_an_error_under_strict_warning_filters(tmp_path: Path) -> None:
    shadow_package(tmp_path)
    done = run(tmp_path, "error::RuntimeWarning")
    assert done.returncode != 0
    assert "RuntimeWarning: trie_cache: the compiled core failed to import" in done.stderr


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_no_warning_when_the_pure_core_is_asked_for(tmp_path: Path, value: str) -> None:
    shadow_package(tmp_path)
    done = run(tmp_path, TRIE_CACHE_PURE_PYTHON=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["python"]
    assert "Warning" not in done.stderr


def test_no_warning_from_a_pure_build(tmp_path: Path) -> None:
    package = shadow_package(tmp_path)
    (package / PURE_BUILD_MARKER).write_text("pure build\n", encoding="utf-8")
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["python"]
    assert "Warning" not in done.stderr


# ``core_name`` marks a test that needs the compiled core, so ``--no-cython`` drops it.
@pytest.mark.parametrize("core_name", ["cython"])
def test_the_unbroken_copy_picks_the_compiled_core(tmp_path: Path, core_name: str) -> None:
    # The copy itself is sound: without the broken file it loads the compiled core, so the
    # tests above fail because of that file alone.
    shutil.copytree(
        Path(trie_cache.__file__).parent,
        tmp_path / "trie_cache",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    done = run(tmp_path, "error")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cython"]
