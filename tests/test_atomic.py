"""Atomic writes: a file appears whole or not at all, with the permissions any new file gets."""

import os
import stat

import pytest

from deepclust import atomic


def test_a_written_file_has_the_umask_permissions_not_mkstemps(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic.write_text(tmp_path / "config.toml", "x = 1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp alone gives 0600: unreadable to others


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic.write_text(tmp_path / "list", "old\n")
    with pytest.raises(RuntimeError):
        with atomic.replacing(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["list"]
