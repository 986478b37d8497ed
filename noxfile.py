"""Developer sessions: ``nox -s tests`` (each supported CPython found), ``nox -s lint``,
``nox -s typing``; ``nox -l`` lists them. Each runs in its own virtual environment with the
tool versions pinned by the ``dev`` extra; ``.ci/run`` runs the same checks on a fresh clone.

Extra arguments go to the tool: ``nox -s tests-3.12 -- -k lmdb``.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DEV_EXTRA: list[str] = nox.project.load_toml(ROOT / "pyproject.toml")["project"][
    "optional-dependencies"
]["dev"]


def pinned(tool: str) -> str:
    """The dev extra's ``tool==version`` requirement."""
    return next(r for r in DEV_EXTRA if r.startswith(f"{tool}=="))


PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
STUBTEST_ALLOWLIST = ".ci/stubtest-allowlist.txt"

nox.options.sessions = ["tests", "tests_pure", "lint", "typing"]
nox.options.error_on_missing_interpreters = False


def _pytest_against_the_install(session: nox.Session, *args: str) -> None:
    # From a temporary folder: the checkout's own trie_cache folder must not shadow the install.
    tests_dir = str(ROOT / "tests")
    with session.chdir(session.create_tmp()):
        session.run("python", "-m", "pytest", tests_dir, "-p", "no:cacheprovider", *args)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite against an install of the checkout, compiled core included."""
    session.install(".[test]")
    _pytest_against_the_install(session, *session.posargs)


@nox.session(python=PYTHONS[-1])
def tests_pure(session: nox.Session) -> None:
    """The test suite against the pure-Python build (``TRIE_CACHE_NO_EXTENSIONS=1``)."""
    session.install(".[test]", env={"TRIE_CACHE_NO_EXTENSIONS": "1"})
    _pytest_against_the_install(session, "--no-cython", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """``ruff check`` and ``ruff format --check`` over the whole tree."""
    session.install(pinned("ruff"))
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """``mypy --strict`` over the package, the tests and the benchmarks together, then stubtest
    (the stubs of the compiled modules against the built modules)."""
    session.install(".[dev]")
    session.run("mypy", "--strict", "trie_cache", "tests", "bench", *session.posargs)
    # From outside the checkout, so that stubtest imports the installed compiled modules.
    allowlist = str(ROOT / STUBTEST_ALLOWLIST)
    with session.chdir(session.create_tmp()):
        session.run("python", "-m", "mypy.stubtest", "trie_cache", "--allowlist", allowlist)
