"""Running one piece of work in several threads at once, for the thread-safety tests."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_threads(
    work: Callable[[int], object], count: int = 6, *, timeout: float = 180
) -> list[BaseException]:
    """Run ``work(n)`` for n in ``range(count)``, one thread each, released together.

    Returns what the threads raised, in the order they raised it; fails the test if a thread
    is still running after ``timeout`` seconds.
    """
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def target(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(n)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
        assert not thread.is_alive()
    return errors


def unexpected(errors: list[BaseException]) -> list[BaseException]:
    """``errors`` without the iterator's "changed during iteration" RuntimeErrors."""
    return [e for e in errors if not (isinstance(e, RuntimeError) and "changed" in str(e))]
