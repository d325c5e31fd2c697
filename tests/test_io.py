"""Atomic writes and output-location checks."""

from __future__ import annotations

import os
import stat

import pytest

from erasekit.core.errors import OutputError
from erasekit.core.io import atomic_write_text, check_writable_dir


def test_atomic_write_replaces_and_uses_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "report.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in target.parent.iterdir()] == ["report.json"], "no temp files left behind"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_output_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not writable|not a directory"):
        check_writable_dir(blocker / "out")
    with pytest.raises(OutputError, match="not a directory"):
        check_writable_dir(blocker)
    check_writable_dir(tmp_path / "new" / "deeper")  # creatable: fine, and nothing is created
    assert not (tmp_path / "new").exists()
