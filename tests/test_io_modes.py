"""Atomically written files get the mode a plain ``open()`` gives (0o666 less the umask),
not ``mkstemp``'s 0600: tables, weights and metrics stay readable on a shared filesystem.

Each umask is set in a fresh process (the umask is process-wide), which writes one file
with every atomic helper, one with a consumer of them (the report's tables), the run lock's
file, and one with plain ``open()``, then reports their modes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from adaptivemix.io import atomic_write

WRITER = """
import json, os, stat, sys
from pathlib import Path
os.umask(int(sys.argv[1], 8))
import pandas as pd
from adaptivemix import io
from adaptivemix.report.writers import write_frame
from adaptivemix.run_lock import hold_run, lock_path
out = Path(sys.argv[2])
out.mkdir()
with open(out / "plain.txt", "w") as f:
    f.write("x")
old = out / "replaced.json"  # a file left at 0600 by an older version is replaced
old.write_text("{}")
old.chmod(0o600)
io.write_json(old, {"a": 1})
io.atomic_write(out / "atomic.bin", lambda f: f.write(b"x"))
io.write_json(out / "w.json", {"a": 1})
io.write_jsonl(out / "w.jsonl", [{"a": 1}])
io.save_torch(out / "w.pt", {"a": 1})
io.append_jsonl(out / "a.jsonl", {"a": 1})
frame = pd.DataFrame({"a": [1]})
write_frame(frame, frame, out / "table")
with hold_run(out / "state"):
    pass
assert lock_path(out / "state") == out / "state.lock"
print(json.dumps({p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}))
"""


@pytest.mark.parametrize(("umask", "expected"), [("022", 0o644), ("077", 0o600)])
def test_atomic_files_get_the_mode_of_a_plain_open(tmp_path, repo_root, umask, expected):
    env = os.environ | {"PYTHONPATH": str(repo_root)}
    command = [sys.executable, "-c", WRITER, umask, str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    modes = json.loads(done.stdout)
    assert modes["plain.txt"] == 0o666 & ~int(umask, 8) == expected
    names = "plain.txt replaced.json atomic.bin w.json w.jsonl w.pt a.jsonl table.csv table.md"
    assert sorted(modes) == sorted([*names.split(), "table.tex", "state.lock"])  # no temporary
    assert {name: oct(mode) for name, mode in modes.items()} == dict.fromkeys(modes, oct(expected))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_the_process_umask_is_left_as_it_was(tmp_path):
    before = os.umask(0o027)
    try:
        atomic_write(tmp_path / "f", lambda f: f.write(b"x"))
        assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o640
        assert os.umask(0o027) == 0o027  # nothing in between changed it
    finally:
        os.umask(before)
