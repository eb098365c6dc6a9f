"""pool.in_order: results in the calls' order, answered calls passed through, at most a window of calls read
ahead, in worker processes or here."""

from __future__ import annotations

import os

import pytest

from deepclust import pool


def _calls(count: int, read: list):
    for i in range(count):
        read.append(i)
        yield (i, None, f"answered {i}") if i % 3 == 2 else (i, pow, (i, 2))


@pytest.mark.parametrize("processes", [1, 2])
def test_results_in_order_with_a_bounded_window(processes):
    read = []
    results = pool.in_order(_calls(20, read), processes, "fork" if os.name == "posix" else "spawn")
    first = next(results)
    assert first == (0, 0)
    # one worker: each call is read when its turn comes; several: a window of calls is read ahead, no more
    assert len(read) == (1 if processes == 1 else pool.IN_FLIGHT_PER_PROCESS * processes)
    rest = list(results)
    assert [key for key, _ in [first, *rest]] == list(range(20))
    assert all(value == (f"answered {key}" if key % 3 == 2 else key ** 2) for key, value in [first, *rest])


def test_the_functions_run_in_worker_processes_or_here():
    here = os.getpid()
    assert {pid for _, pid in pool.in_order([(i, os.getpid, ()) for i in range(4)], 1)} == {here}
    there = {pid for _, pid in pool.in_order([(i, os.getpid, ()) for i in range(4)], 2, "spawn")}
    assert there and here not in there
