"""``Cache.cached``: an async function read through a cache, keyed by its arguments.

A key *template* is a ``str.format`` string whose fields are parameter names of the function
(``"tenant_{tenant}/clients/page_{page}"``, format specs allowed: ``"page_{page:05d}"``). Only
arguments whose ``str``/``format`` is the same in every process and every run may fill a field,
since keys outlive the process in ``LmdbCache``; the types allowed are exactly ``str``, ``int``,
``bool``, ``float``, ``decimal.Decimal``, ``uuid.UUID``, ``datetime.date``,
``datetime.datetime``, ``datetime.time`` and ``None`` -- not their subclasses (an ``IntEnum``'s
``str`` changed between Python versions, and a subclass may override ``__format__``), and no
other object (a default ``repr`` holds a memory address). Anything else is a ``TypeError``
naming the argument and its type. Arguments that no field names are not checked.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import inspect
import string
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, TypeVar, overload

from ._cache import check_key, check_max_age, check_stale
from ._rows import CachedRows

if TYPE_CHECKING:
    from typing_extensions import ParamSpec, Self

    from ._cache import Cache

    P = ParamSpec("P")
    P2 = ParamSpec("P2")
else:
    from typing import ParamSpec

    P = ParamSpec("P")
    P2 = ParamSpec("P2")

__all__ = ["STABLE_KEY_TYPES", "Cached", "KeySpec"]

S = TypeVar("S")

#: A key template, or a callable taking the function's arguments and returning the key.
KeySpec = str | Callable[..., str]

#: The exact types an argument may have to fill a field of a key template.
STABLE_KEY_TYPES: frozenset[type] = frozenset(
    {
        str,
        int,
        bool,
        float,
        decimal.Decimal,
        uuid.UUID,
        datetime.date,
        datetime.datetime,
        datetime.time,
        type(None),
    }
)
_ALLOWED = "str, int, bool, float, Decimal, UUID, date, datetime, time or None"

_UNBOUND: Any = object()


def _field(name: str, value: object, spec: str) -> str:
    if type(value) not in STABLE_KEY_TYPES:
        raise TypeError(
            f"cannot build a cache key from argument {name!r} of type {type(value).__name__}: "
            f"its str() is not known to be stable; pass {_ALLOWED}, or give cached() a key "
            "callable"
        )
    return format(value, spec)


class _Template:
    """A parsed key template: literal heads and fields, checked against a signature."""

    __slots__ = ("parts", "text")

    def __init__(self, text: str, signature: inspect.Signature, func_name: str) -> None:
        self.text = text
        parts: list[tuple[str, str | None, str]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"bad key template {text!r}: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if field is not None:
                param = signature.parameters.get(field)
                if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    raise ValueError(
                        f"key template {text!r}: field {{{field}}} is not a named parameter "
                        f"of {func_name}(); fields are bare parameter names"
                    )
                if conversion is not None:
                    raise ValueError(
                        f"key template {text!r}: conversions (!{conversion}) are not allowed"
                    )
                if spec and "{" in spec:
                    raise ValueError(f"key template {text!r}: nested fields are not allowed")
            parts.append((literal, field, spec or ""))
        self.parts = parts

    def render(self, arguments: Mapping[str, Any]) -> str:
        out = []
        for literal, field, spec in self.parts:
            out.append(literal)
            if field is not None:
                out.append(_field(field, arguments[field], spec))
        return "".join(out)

    def head(self, arguments: Mapping[str, Any]) -> str:
        """The key's prefix up to the first field not in ``arguments``."""
        out = []
        for literal, field, spec in self.parts:
            out.append(literal)
            if field is None:
                continue
            if field not in arguments:
                break
            out.append(_field(field, arguments[field], spec))
        return "".join(out)


class Cached(Generic[P]):
    """An async function read through a cache: ``await f(...)`` returns :class:`CachedRows`.

    Made by :meth:`Cache.cached`. ``f.key(...)`` is the key a call with those arguments uses;
    ``await f.invalidate(**arguments)`` drops every key starting with the template's text up to
    its first field not given (``invalidate()``: the literal head). On a method, ``self`` is
    bound as usual and may not appear in the template unless its type is allowed.
    """

    def __init__(
        self,
        cache: Cache,
        func: Callable[P, Awaitable[Any]],
        key: KeySpec,
        max_age: float | None,
        stale_while_revalidate: float | None,
        bound: Any = _UNBOUND,
    ) -> None:
        self._cache = cache
        self._func: Callable[..., Awaitable[Any]] = func
        self._signature = inspect.signature(func)
        self._max_age = max_age
        self._stale = stale_while_revalidate
        self._bound = bound
        self._template: _Template | None = None
        self._key_func: Callable[..., str] | None = None
        if isinstance(key, str):
            self._template = _Template(key, self._signature, getattr(func, "__name__", "?"))
        else:
            self._key_func = key
        functools.update_wrapper(self, func)

    def _full(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return args if self._bound is _UNBOUND else (self._bound, *args)

    def _key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if self._key_func is not None:
            return check_key(self._key_func(*args, **kwargs))
        assert self._template is not None
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return self._template.render(bound.arguments)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> CachedRows:
        full = self._full(args)
        key = self._key(full, kwargs)
        func = self._func
        return await self._cache.get_or_fetch(
            key,
            lambda: func(*full, **kwargs),
            max_age=self._max_age,
            stale_while_revalidate=self._stale,
        )

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key a call with these arguments reads and fills."""
        return self._key(self._full(args), kwargs)

    async def invalidate(self, **arguments: Any) -> int:
        """Drop the keys under the template's prefix up to its first field not given.

        Fields given after that one do not narrow it (dropping more is safe for a cache).
        Only a template key can do this: with a key callable, call ``invalidate_prefix``.
        """
        template = self._template
        if template is None:
            raise TypeError("invalidate() needs a key template; this function's key is a callable")
        fields = {field for _, field, _ in template.parts if field is not None}
        for name in arguments:
            if name not in fields:
                raise TypeError(
                    f"invalidate() got {name!r}, which is not a field of the key template "
                    f"{template.text!r}"
                )
        return await self._cache.invalidate_prefix(template.head(arguments))

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(
        self: Cached[Concatenate[S, P2]], instance: S, owner: type[Any] | None = None
    ) -> Cached[P2]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        if instance is None or self._bound is not _UNBOUND:
            return self
        bound: Cached[Any] = Cached.__new__(Cached)
        bound.__dict__.update(self.__dict__)
        bound._bound = instance
        return bound

    def __repr__(self) -> str:
        spec = self._template.text if self._template is not None else self._key_func
        return f"<cached {getattr(self._func, '__qualname__', self._func)!r} key={spec!r}>"


def decorator(
    cache: Cache,
    key: KeySpec,
    max_age: float | None,
    stale_while_revalidate: float | None,
) -> Callable[[Callable[P, Awaitable[Any]]], Cached[P]]:
    """What ``Cache.cached`` returns; checks everything it can before any call."""
    if not isinstance(key, str) and not callable(key):
        raise TypeError(
            f"cached() key must be a str template or a callable, not {type(key).__name__}"
        )
    check_max_age(max_age)
    check_stale(stale_while_revalidate)

    def wrap(func: Callable[P, Awaitable[Any]]) -> Cached[P]:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(
                f"cached() needs an async function (async def), not {type(func).__name__} "
                f"{getattr(func, '__qualname__', func)!r}"
            )
        return Cached(cache, func, key, max_age, stale_while_revalidate)

    return wrap
