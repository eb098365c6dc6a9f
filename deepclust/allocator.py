"""The memory allocator the command line runs under: tcmalloc where the system has it.

Why: a training step allocates and frees tens of megabytes of activations and
gradients. Under glibc's malloc, TensorFlow's threads get their own arenas, and
the freed blocks go back to the kernel and come back as fresh pages, so every
step pays for page faults, several times as many as under tcmalloc, and trains
markedly slower (the figures and how they were measured: RESULTS.md, "Speed"). The usual cure (the one TensorFlow's and PyTorch's CPU tuning guides
give) is to preload tcmalloc, which has to happen before the process starts, so
``deepclust`` re-executes itself once with ``LD_PRELOAD`` set when it finds the
library, before anything heavy is imported.

``DEEPCLUST_ALLOCATOR`` chooses: ``auto`` (default: the first of
:data:`CANDIDATES` found), ``system`` (never preload), or the path of a
library to preload.
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
from pathlib import Path

log = logging.getLogger(__name__)

ENV_CHOICE = "DEEPCLUST_ALLOCATOR"
# Set on the re-executed process, so it never re-executes again (even if ld.so
# could not preload the library, which it reports and ignores).
ENV_DONE = "DEEPCLUST_ALLOCATOR_PRELOADED"
# In order of preference: tcmalloc trained fastest, then jemalloc (RESULTS.md, "Speed").
CANDIDATES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libjemalloc.so.2")
KNOWN_NAMES = ("tcmalloc", "jemalloc", "mimalloc")
INSTALL_HINT = ("Debian/Ubuntu: apt install libtcmalloc-minimal4; Fedora/RHEL: dnf install gperftools-libs; "
                "conda: conda install gperftools")


def library_dirs() -> list[Path]:
    """Where the dynamic linker's usual libraries live on this machine."""
    dirs = []
    multiarch = sysconfig.get_config_var("MULTIARCH")
    for root in ("/usr/lib", "/lib", "/usr/local/lib"):
        if multiarch:
            dirs.append(Path(root) / multiarch)
        dirs.append(Path(root))
    dirs += [Path("/usr/lib64"), Path("/lib64")]
    if sys.prefix:  # a conda environment carries its own lib/
        dirs.append(Path(sys.prefix) / "lib")
    return dirs


def find_fast_allocator(dirs: list[Path] | None = None) -> Path | None:
    """The first of :data:`CANDIDATES` found in ``dirs`` (default :func:`library_dirs`)."""
    for name in CANDIDATES:
        for folder in dirs if dirs is not None else library_dirs():
            path = folder / name
            if path.is_file():
                return path
    return None


def loaded_allocator(maps: str | None = None) -> str | None:
    """The fast allocator mapped into this process (from /proc/self/maps), or None (the C library's)."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return None
    for line in maps.splitlines():
        path = line.split()[-1] if line.split() else ""
        name = Path(path).name
        if name.startswith("lib") and any(k in name for k in KNOWN_NAMES):
            return path
    return None


def preload_environment(environ: dict[str, str] | None = None, dirs: list[Path] | None = None) -> dict | None:
    """The environment to re-execute with, or None when there is nothing to do.

    Nothing to do: not Linux, ``DEEPCLUST_ALLOCATOR=system``, already re-executed,
    a fast allocator already preloaded, or none installed.
    """
    env = dict(os.environ if environ is None else environ)
    choice = env.get(ENV_CHOICE, "auto").strip() or "auto"
    if not sys.platform.startswith("linux") or choice == "system" or env.get(ENV_DONE):
        return None
    preloaded = env.get("LD_PRELOAD", "")
    if any(k in preloaded for k in KNOWN_NAMES):
        return None
    if choice == "auto":
        library = find_fast_allocator(dirs)
        if library is None:
            return None
    else:
        library = Path(choice)
        if not library.is_file():
            raise FileNotFoundError(
                f"{ENV_CHOICE} must be 'auto', 'system' or the path of an allocator library to preload. "
                f"Received: {ENV_CHOICE}={choice!r}, which is not a file.")
    env["LD_PRELOAD"] = f"{library}:{preloaded}" if preloaded else str(library)
    env[ENV_DONE] = str(library)
    return env


def reexec_with_fast_allocator(python_args: list[str]) -> None:
    """Replace this process by ``python *python_args`` with a fast allocator preloaded, if one can be.

    ``python_args``: what follows the interpreter, e.g. ``["-m", "deepclust", "train", ...]``.
    Returns (doing nothing) when :func:`preload_environment` finds nothing to do.
    Call it before TensorFlow is imported: afterwards the process has already
    spent its start-up under the old allocator, which is harmless but wasted.
    """
    env = preload_environment()
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *python_args], env)


def describe() -> str:
    """One line for logs and benchmarks: which allocator this process runs under."""
    loaded = loaded_allocator()
    if loaded:
        return Path(loaded).name
    return "system malloc"


def advice() -> str | None:
    """What to install when training runs under the C library's malloc on Linux, else None."""
    if not sys.platform.startswith("linux") or loaded_allocator() is not None:
        return None
    if os.environ.get(ENV_CHOICE, "auto") == "system":
        return None
    return ("training runs under the C library's malloc, markedly slower on a CPU than under tcmalloc "
            "(RESULTS.md, 'Speed'), "
            f"which deepclust preloads by itself once installed ({INSTALL_HINT}); "
            f"set {ENV_CHOICE}=system to keep malloc and silence this")


if __name__ == "__main__":  # python -m deepclust.allocator: which allocator a re-executed process gets
    reexec_with_fast_allocator(["-m", "deepclust.allocator", *sys.argv[1:]])
    print(describe())
