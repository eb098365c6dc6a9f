"""Calls run in other processes with a bounded number waiting, their results in order.

What ``evaluate`` (scoring separated mixtures) and the corpus cache (decoding
files) share: a window of at most ``IN_FLIGHT_PER_PROCESS`` calls per process
submitted and not yet handed back, so a long test set or corpus does not pile
up audio in memory, and the calls are read lazily, only as far as the window
needs. With one process or none the calls run here, in the same order.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Iterable, Iterator

# Calls submitted and not yet handed back, per process: one running and some queued, so no process waits
# for the next while the first in line is still being worked on.
IN_FLIGHT_PER_PROCESS = 4

Call = tuple[Any, Callable[..., Any] | None, tuple]  # (key, function, its arguments) or (key, None, result)


def in_order(calls: Iterable[Call], processes: int, start_method: str = "spawn") -> Iterator[tuple[Any, Any]]:
    """``(key, function(*arguments))`` for each ``(key, function, arguments)`` of ``calls``, in their order;
    a call whose function is None is answered already (its ``arguments`` are the result) and runs nowhere.

    With ``processes`` > 1 the functions run in that many processes (started by ``start_method``), at most
    ``IN_FLIGHT_PER_PROCESS * processes`` calls submitted and not yet handed back; else they run here.
    """
    if processes <= 1:
        for key, function, arguments in calls:
            yield key, arguments if function is None else function(*arguments)
        return
    window: deque[tuple[Any, Future]] = deque()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(start_method)) as pool:
        for key, function, arguments in calls:
            window.append((key, _answered(arguments) if function is None else pool.submit(function, *arguments)))
            if len(window) >= IN_FLIGHT_PER_PROCESS * processes:
                key, future = window.popleft()
                yield key, future.result()
        while window:
            key, future = window.popleft()
            yield key, future.result()


def _answered(result: Any) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future
