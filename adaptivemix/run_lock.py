"""One trainer per run: an exclusive advisory lock on the run's state folder.

Two trainers on one state folder interleave their log rows and overwrite each other's
checkpoints (Snakemake's ``--unlock`` forgets which jobs run; a killed Snakemake leaves its
job running). A trainer therefore holds ``fcntl.flock`` on ``<state_dir>.lock`` for as long
as it runs, through an open file descriptor: when the process ends, however it ends
(``kill -9`` included), the kernel drops the lock, so a stale lock never blocks a rerun. A
second trainer refuses at once (non-blocking) with :class:`RunLockedError`, before it reads or
writes anything of the run; the file names the holder (pid, host, start time) for the
message. Under torchrun only rank 0 takes the lock, and every rank learns the outcome.

The file lies *beside* the state folder, not in it: the lock must outlive anything done to
the folder (a reset, or a person removing it to start afresh while a trainer still runs
would otherwise let a rerun lock a new file while the old holder writes on). For the same
reason the file is never deleted: removing a lock file on release lets a waiter hold the
unlinked one while a newcomer locks a new one. On NFS, Linux maps ``flock`` to POSIX
byte-range locks, which lock across clients; Lustre needs its ``flock`` mount option.

    with hold_run(state_dir):
        ...  # train; no other trainer of this run can start meanwhile
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_SUFFIX = ".lock"
#: How long a refused trainer waits for a holder that has just locked to write its name.
HOLDER_WAIT_S = 1.0


class RunLockedError(RuntimeError):
    """Another process holds the run's lock: this trainer refused before touching the run."""

    def __init__(self, state_dir: Path, holder: dict | None):
        self.state_dir, self.holder = Path(state_dir), holder
        super().__init__(
            f"run state folder {self.state_dir} is in use by {_describe(holder)}; two trainers"
            " on one run would mix their logs and checkpoints. Wait for it to end, or stop"
            " that process, then rerun (the run resumes from its last checkpoint)"
        )


def _describe(holder: dict | None) -> str:
    if holder is None:
        return "another process (rank 0 of this launch could not lock it)"
    if not holder:
        return "another process (it has not yet written its name)"
    pid, host, since = (holder.get(k, "?") for k in ("pid", "host", "since"))
    return f"another trainer (pid {pid} on host {host}, since {since})"


def lock_path(state_dir: str | Path) -> Path:
    """``<state_dir>.lock``, of the folder's resolved path (two spellings, one lock)."""
    folder = Path(state_dir).resolve()
    return folder.with_name(folder.name + LOCK_SUFFIX)


@contextmanager
def _exclusive(state_dir: Path) -> Iterator[Path]:
    path = lock_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(state_dir, _read_holder(fd)) from None
        _write_holder(fd)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # no stale name once released (the lock, not the text, rules)
    finally:
        os.close(fd)  # releases the lock


def _write_holder(fd: int) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
    os.ftruncate(fd, 0)
    os.pwrite(fd, (text + "\n").encode(), 0)


def _read_holder(fd: int) -> dict:
    """The holder's name; {} if it has not written it within :data:`HOLDER_WAIT_S`."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        text = os.pread(fd, 4096, 0).decode(errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            if time.monotonic() > deadline:
                return {}
            time.sleep(0.02)


@contextmanager
def hold_run(
    state_dir: str | Path, take: bool = True, any_refused: Callable[[bool], bool] = bool
) -> Iterator[None]:
    """Hold the run's lock for the block, or raise :class:`RunLockedError` at once.

    ``take``: whether this process takes the lock (rank 0 of a torchrun launch; the other
    ranks do not). ``any_refused(refused)`` tells every rank whether the taker was refused
    (a collective under torchrun; the identity in one process), so all ranks raise together.
    """
    with ExitStack() as stack:
        error: BaseException | None = None
        if take:
            try:
                stack.enter_context(_exclusive(Path(state_dir)))
            except Exception as err:  # every rank must reach the collective below
                error = err
        if any_refused(error is not None):
            raise error or RunLockedError(Path(state_dir), None)
        yield
