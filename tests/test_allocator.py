"""deepclust.allocator: the command line re-executes itself under tcmalloc where it is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepclust import allocator

MAPS_GLIBC = """\
7f0000000000-7f0000020000 r--p 00000000 fd:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000100000-7f0000101000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
"""
MAPS_TCMALLOC = MAPS_GLIBC + "7f0000200000-7f0000210000 r-xp 00000000 fd:01 456 " \
                             "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n"


def fake_libs(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"\x7fELF")
    return [folder]


def test_find_prefers_tcmalloc_and_finds_nothing_in_empty_dirs(tmp_path):
    dirs = fake_libs(tmp_path / "a", "libjemalloc.so.2") + fake_libs(tmp_path / "b", "libtcmalloc_minimal.so.4")
    assert allocator.find_fast_allocator(dirs) == tmp_path / "b" / "libtcmalloc_minimal.so.4"
    assert allocator.find_fast_allocator(fake_libs(tmp_path / "c", "libjemalloc.so.2")).name == "libjemalloc.so.2"
    assert allocator.find_fast_allocator(fake_libs(tmp_path / "empty")) is None


def test_loaded_allocator_reads_the_memory_map():
    assert allocator.loaded_allocator(MAPS_GLIBC) is None
    assert allocator.loaded_allocator(MAPS_TCMALLOC).endswith("libtcmalloc_minimal.so.4.5.10")


def test_preload_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    dirs = fake_libs(tmp_path, "libtcmalloc_minimal.so.4")
    lib = str(tmp_path / "libtcmalloc_minimal.so.4")

    env = allocator.preload_environment({"PATH": "/bin"}, dirs)
    assert env["LD_PRELOAD"] == lib and env[allocator.ENV_DONE] == lib and env["PATH"] == "/bin"
    # Whatever the user preloads already stays, after ours.
    assert allocator.preload_environment({"LD_PRELOAD": "/x/libfoo.so"}, dirs)["LD_PRELOAD"] == f"{lib}:/x/libfoo.so"
    # Nothing to do: opted out, already re-executed, a fast allocator already preloaded, none installed.
    assert allocator.preload_environment({allocator.ENV_CHOICE: "system"}, dirs) is None
    assert allocator.preload_environment({allocator.ENV_DONE: lib}, dirs) is None
    assert allocator.preload_environment({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, dirs) is None
    assert allocator.preload_environment({}, fake_libs(tmp_path / "empty")) is None
    # An explicit library is used as given.
    other = fake_libs(tmp_path / "other", "libmine.so")[0] / "libmine.so"
    assert allocator.preload_environment({allocator.ENV_CHOICE: str(other)}, dirs)["LD_PRELOAD"] == str(other)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.preload_environment({}, dirs) is None


def test_a_missing_explicit_library_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(FileNotFoundError, match=r"Received: DEEPCLUST_ALLOCATOR='.*nope\.so'"):
        allocator.preload_environment({allocator.ENV_CHOICE: str(tmp_path / "nope.so")}, [])
    env = {**os.environ, allocator.ENV_CHOICE: str(tmp_path / "nope.so")}
    env.pop(allocator.ENV_DONE, None)
    done = subprocess.run([sys.executable, "-m", "deepclust", "train", "--base", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "DEEPCLUST_ALLOCATOR" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is a Linux (glibc) mechanism")
def test_reexec_runs_under_the_library_found():
    env = {k: v for k, v in os.environ.items() if k not in (allocator.ENV_DONE, allocator.ENV_CHOICE)}
    env.pop("LD_PRELOAD", None)
    run = lambda extra: subprocess.run([sys.executable, "-m", "deepclust.allocator"], env={**env, **extra},  # noqa: E731
                                       capture_output=True, text=True, timeout=60).stdout.strip()
    assert run({allocator.ENV_CHOICE: "system"}) == "system malloc"
    library = allocator.find_fast_allocator()
    if library is None:
        pytest.skip(f"no tcmalloc/jemalloc installed here ({allocator.INSTALL_HINT})")
    assert run({}).startswith(library.name)
