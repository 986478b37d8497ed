"""``Cache.cached``: the read-through decorator, run over every storing backend."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import enum
import inspect
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from trie_cache import STABLE_KEY_TYPES, Cache, CachedRows

ROWS = CachedRows({"c1": {"name": "Ada"}}, 1_700_000_000.0)


def counting(cache: Cache, template: Any = "tenant_{tenant}/clients/page_{page}", **kw: Any) -> Any:
    calls: list[tuple[Any, ...]] = []

    @cache.cached(template, **kw)
    async def clients_page(tenant: str, page: int = 1) -> Mapping[str, Mapping[str, Any]]:
        """The clients of one page."""
        calls.append((tenant, page))
        return {f"{tenant}-{page}": {"page": page}}

    return clients_page, calls


async def test_a_call_reads_through_the_cache(cache: Cache) -> None:
    clients_page, calls = counting(cache)
    rows = await clients_page("t1", 3)
    assert isinstance(rows, CachedRows)
    assert rows.rows == {"t1-3": {"page": 3}}
    assert await clients_page("t1", page=3) == rows
    assert await clients_page(tenant="t1", page=3) == rows
    assert calls == [("t1", 3)]
    assert await cache.get("tenant_t1/clients/page_3") == rows


async def test_defaults_are_applied_to_the_key(cache: Cache) -> None:
    clients_page, calls = counting(cache)
    assert clients_page.key("t1") == "tenant_t1/clients/page_1"
    await clients_page("t1")
    await clients_page("t1", 1)
    assert calls == [("t1", 1)]


async def test_invalidate_drops_the_prefix_up_to_the_first_missing_field(cache: Cache) -> None:
    clients_page, calls = counting(cache)
    for tenant in ("t1", "t10", "t2"):
        for page in (1, 2):
            await clients_page(tenant, page)
    assert await clients_page.invalidate(tenant="t1") == 2  # not t10's pages
    assert await cache.get("tenant_t10/clients/page_1") is not None
    assert await clients_page.invalidate(tenant="t2", page=2) == 1
    assert await clients_page.invalidate() == 3  # the literal head "tenant_"
    await clients_page("t1", 1)
    assert len(calls) == 7


async def test_invalidate_refuses_names_that_are_not_fields(cache: Cache) -> None:
    clients_page, _ = counting(cache)
    with pytest.raises(TypeError, match="'tenat'"):
        await clients_page.invalidate(tenat="t1")


async def test_invalidate_needs_a_template(cache: Cache) -> None:
    clients_page, _ = counting(cache, lambda tenant, page=1: f"{tenant}/{page}")
    with pytest.raises(TypeError, match="template"):
        await clients_page.invalidate(tenant="t1")


async def test_a_key_callable(cache: Cache) -> None:
    clients_page, _ = counting(cache, lambda tenant, page=1: f"c/{tenant}:{page}")
    assert clients_page.key("t1", 2) == "c/t1:2"
    rows = await clients_page("t1", 2)
    assert await cache.get("c/t1:2") == rows
    bad, _ = counting(cache, lambda tenant, page=1: page)
    with pytest.raises(TypeError, match="int"):
        await bad("t1", 2)


def test_keeps_name_docstring_signature(cache: Cache) -> None:
    clients_page, _ = counting(cache)
    assert clients_page.__name__ == "clients_page"
    assert clients_page.__doc__ == "The clients of one page."
    assert str(inspect.signature(clients_page)) == str(inspect.signature(clients_page.__wrapped__))
    assert "tenant: 'str'" in str(inspect.signature(clients_page))


async def test_works_on_methods(cache: Cache) -> None:
    class Clients:
        def __init__(self) -> None:
            self.calls = 0

        @cache.cached("tenant_{tenant}/clients/page_{page}")
        async def page(self, tenant: str, page: int) -> CachedRows:
            self.calls += 1
            return ROWS

    a, b = Clients(), Clients()
    assert await a.page("t1", 1) == ROWS
    assert await b.page("t1", 1) == ROWS  # the same key: b reads what a stored
    assert (a.calls, b.calls) == (1, 0)
    assert a.page.key("t1", 2) == "tenant_t1/clients/page_2"
    assert await Clients.page.invalidate(tenant="t1") == 1
    assert await b.page("t1", 1) == ROWS
    assert b.calls == 1


@pytest.mark.parametrize("kind", ["def", "lambda", "async generator", "class"])
def test_refuses_what_is_not_an_async_function(cache: Cache, kind: str) -> None:
    def sync(tenant: str) -> CachedRows:
        return ROWS

    async def agen(tenant: str) -> Any:
        yield ROWS

    target = {"def": sync, "lambda": lambda tenant: ROWS, "async generator": agen, "class": int}
    with pytest.raises(TypeError, match="async function"):
        cache.cached("k/{tenant}")(target[kind])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("k/{tenat}", "tenat"),
        ("k/{}", "named parameter"),
        ("k/{0}", "named parameter"),
        ("k/{tenant.upper}", "named parameter"),
        ("k/{tenant!r}", "conversions"),
        ("k/{tenant", "bad key template"),
        ("k/{args}", "named parameter"),
    ],
)
def test_refuses_bad_templates(cache: Cache, template: str, match: str) -> None:
    async def f(tenant: str, *args: int) -> CachedRows:
        return ROWS

    with pytest.raises(ValueError, match=match):
        cache.cached(template)(f)


def test_refuses_a_key_that_is_neither_template_nor_callable(cache: Cache) -> None:
    with pytest.raises(TypeError, match="bytes"):
        cache.cached(b"k/{x}")  # type: ignore[arg-type]


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    def __format__(self, spec: str) -> str:
        return "changing"


STABLE = [
    ("s", "s"),
    (7, "7"),
    (True, "True"),
    (0.5, "0.5"),
    (decimal.Decimal("1.10"), "1.10"),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (datetime.date(2024, 1, 2), "2024-01-02"),
    (datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02 03:04:05"),
    (datetime.time(3, 4), "03:04:00"),
    (None, "None"),
]


@pytest.mark.parametrize(("value", "text"), STABLE, ids=[type(v).__name__ for v, _ in STABLE])
def test_stable_types_format_into_the_key(cache: Cache, value: Any, text: str) -> None:
    async def f(x: Any) -> CachedRows:
        return ROWS

    assert cache.cached("k/{x}")(f).key(value) == f"k/{text}"
    assert {type(v) for v, _ in STABLE} == set(STABLE_KEY_TYPES)


@pytest.mark.parametrize(
    "value", [object(), [1], {"a": 1}, (1,), b"x", Color.RED, Name("n"), Path("p"), 1j]
)
async def test_refuses_arguments_whose_str_is_not_stable(cache: Cache, value: Any) -> None:
    fetched = []

    @cache.cached("k/{x}")
    async def f(x: Any) -> CachedRows:
        fetched.append(x)
        return ROWS

    with pytest.raises(TypeError, match=f"'x' of type {type(value).__name__}"):
        await f(value)
    with pytest.raises(TypeError, match=type(value).__name__):
        await f.invalidate(x=value)
    assert fetched == []


async def test_arguments_outside_the_template_are_not_checked(cache: Cache) -> None:
    @cache.cached("k/{x}")
    async def f(x: int, connection: object) -> CachedRows:
        return ROWS

    assert await f(1, object()) == ROWS


async def test_format_specs_are_allowed(cache: Cache) -> None:
    @cache.cached("page_{page:05d}")
    async def f(page: int) -> CachedRows:
        return ROWS

    assert f.key(42) == "page_00042"


async def test_max_age_and_stale_while_revalidate_on_the_decorator(cache: Cache) -> None:
    clients_page, calls = counting(cache, max_age=10, stale_while_revalidate=1000)
    old = CachedRows({"old": {}}, time.time() - 100)
    await cache.put(clients_page.key("t1", 1), old)
    assert await clients_page("t1", 1) == old  # stale, served; a refresh starts
    deadline = time.monotonic() + 10
    while cache._refresh_tasks:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.001)
    assert calls == [("t1", 1)]
    assert (await clients_page("t1", 1)).rows == {"t1-1": {"page": 1}}
    expired, _ = counting(cache, max_age=10)
    await cache.put(expired.key("t2", 1), old)
    assert (await expired("t2", 1)).rows == {"t2-1": {"page": 1}}


def test_bad_max_age_on_the_decorator(cache: Cache) -> None:
    with pytest.raises(ValueError, match="max_age"):
        cache.cached("k", max_age=-1)
    with pytest.raises(TypeError, match="stale_while_revalidate"):
        cache.cached("k", stale_while_revalidate="1")  # type: ignore[arg-type]


TYPED = """
from collections.abc import Mapping
from typing import Any
from trie_cache import MemCache

cache = MemCache()

@cache.cached("tenant_{tenant}/clients/page_{page}", max_age=30)
async def clients_page(tenant: str, page: int) -> Mapping[str, Mapping[str, Any]]:
    return {}

class Repo:
    @cache.cached("orders/{customer}")
    async def orders(self, customer: int) -> Mapping[str, Mapping[str, Any]]:
        return {}

async def main() -> None:
    reveal_type(await clients_page("t1", 3))
    reveal_type(clients_page.key("t1", page=3))
    reveal_type(await Repo().orders(5))
    await clients_page("t1", "3")
    await Repo().orders("5")
    Repo().orders.key(5)
"""


def test_type_checkers_see_the_signature(tmp_path: Path) -> None:
    from mypy import api

    source = tmp_path / "typed.py"
    source.write_text(TYPED)
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(source)]
    )
    lines = [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]
    assert 'note: Revealed type is "trie_cache._rows.CachedRows"' in lines, (out, err)
    assert 'note: Revealed type is "str"' in lines, out
    assert lines.count('note: Revealed type is "trie_cache._rows.CachedRows"') == 2, out
    errors = [line for line in lines if line.startswith("error")]
    assert len(errors) == 2, out
    assert 'Argument 2 to "__call__" of "Cached" has incompatible type "str"' in errors[0], out
    assert 'Argument 1 to "__call__" of "Cached" has incompatible type "str"' in errors[1], out
    assert status == 1
