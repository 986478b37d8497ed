"""Every code block of the README works as printed.

Python blocks run, each in a fresh namespace, in a temporary working folder. Shell blocks name
commands that take minutes (installs, benchmarks), so each command is checked instead of run:
the extras it installs exist, the script or module it runs exists, and every option it passes is
in that program's ``--help``. CI runs the README's test command itself (``.ci/run``).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from redis_support import shared_url

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PYPROJECT = ROOT / "pyproject.toml"


def code_blocks(language: str) -> list[tuple[str, str]]:
    """``(section heading, code)`` of each block in ``language``, in README order."""
    blocks = []
    heading = "top"
    text = README.read_text(encoding="utf-8")
    for match in re.finditer(
        r"^(#+ [^\n]*)$|^```(\w*)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL
    ):
        if match.group(1):
            heading = match.group(1).lstrip("# ")
        elif match.group(2) == language:
            blocks.append((heading, match.group(3)))
    return blocks


PYTHON_BLOCKS = code_blocks("python")
SHELL_COMMANDS = [
    (heading, command)
    for heading, code in code_blocks("bash")
    for line in code.splitlines()
    if (command := line.split("  #", 1)[0].strip())
]


def test_the_readme_has_its_blocks() -> None:
    headings = [heading for heading, _ in PYTHON_BLOCKS]
    assert headings.count("A short tour") == 2
    assert "Persistent backend: `LmdbCache`" in headings
    assert len(SHELL_COMMANDS) >= 8


def test_the_first_two_commands_are_the_bench_run_and_the_test_suite() -> None:
    assert SHELL_COMMANDS[:2] == [
        ("trie_cache", "pip install -e '.[bench]' && python -m trie_cache.bench"),
        ("trie_cache", "pip install -e '.[test]' && python -m pytest"),
    ]


@pytest.mark.parametrize(
    "index", range(len(PYTHON_BLOCKS)), ids=[f"{i}-{h}" for i, (h, _) in enumerate(PYTHON_BLOCKS)]
)
def test_python_block_runs(
    index: int,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    heading, code = PYTHON_BLOCKS[index]
    monkeypatch.chdir(tmp_path)
    if "REDIS_URL" in code:
        # The RedisBus example reads REDIS_URL: the test suite's Redis server.
        url, server = shared_url(tmp_path)
        monkeypatch.setenv("REDIS_URL", url)
        if server is not None:
            request.addfinalizer(server.stop)
    namespace = {"__name__": "__main__"}
    exec(compile(code, f"README block {index} ({heading})", "exec", dont_inherit=True), namespace)  # noqa: S102
    assert capsys.readouterr().out.strip()  # every block shows what it did


def extras() -> set[str]:
    text = PYPROJECT.read_text(encoding="utf-8")
    section = text.split("\n[project.optional-dependencies]\n", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([a-z][a-z0-9_-]*) = \[", section, re.MULTILINE))


def help_text(program: list[str]) -> str:
    done = subprocess.run(
        [*program, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_pip_install(args: list[str]) -> None:
    for arg in args:
        if arg.startswith("-"):
            continue
        name, _, wanted = arg.partition("[")
        assert name in {".", "trie_cache"}, arg
        for extra in wanted.rstrip("]").split(","):
            assert not extra or extra in extras(), f"no extra {extra!r} in pyproject.toml"


def check_python(args: list[str]) -> None:
    if args[0] == "-m":
        module, rest = args[1], args[2:]
        assert importlib.util.find_spec(module) is not None, module
        program = [sys.executable, "-m", module]
    else:
        script, rest = args[0], args[1:]
        assert (ROOT / script).is_file(), script
        program = [sys.executable, script]
    paths = [a for a in rest if not a.startswith("-") and "/" in a and not a.endswith(".png")]
    for path in paths:
        assert (ROOT / path).exists(), path
    options = [a.split("=", 1)[0] for a in rest if a.startswith("--")]
    if options:
        text = help_text(program + paths)
        for option in options:
            assert re.search(rf"(^|[\s,\[]){re.escape(option)}\b", text), (option, program)


@pytest.mark.parametrize(
    "index",
    range(len(SHELL_COMMANDS)),
    ids=[f"{i}-{c[:40]}" for i, (_, c) in enumerate(SHELL_COMMANDS)],
)
def test_shell_command_names_what_exists(index: int) -> None:
    _, line = SHELL_COMMANDS[index]
    for command in line.split("&&"):
        words = shlex.split(command)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]  # an environment assignment
        if words[:2] == ["pip", "install"]:
            check_pip_install(words[2:])
        elif words[0] == "python":
            check_python(words[1:])
        else:
            raise AssertionError(f"a README command this test does not know: {command!r}")
