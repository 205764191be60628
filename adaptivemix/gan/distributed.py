"""How a training run is launched: torchrun ranks (DDP) and SLURM preemption (SIGTERM).

Data parallelism. Under torchrun (``WORLD_SIZE`` > 1) the process group is initialised
(gloo on CPU, nccl on CUDA, with ``cuda`` meaning the rank's ``LOCAL_RANK`` device). Every
rank draws the *global* batch's indices and latents from the same seeded generator, so all
ranks hold identical random streams, and rank r uses rows r·B/W … (r+1)·B/W; ``batch_size``
stays the global batch. Gradients are averaged by one all-reduce of the flattened
gradients after each backward pass (as stylegan2-ada-pytorch's training loop does) rather
than by wrapping G and D in ``DistributedDataParallel``: methods call ``D.features`` /
``D.head`` and G's stages directly, which would bypass DDP's forward hooks (no sync), and
R1/GP/path-length take double backward passes that DDP's reducer does not support. The
loss value travels in the same buffer, so every rank agrees on divergence. Buffers (e.g.
BatchNorm statistics) are broadcast from rank 0 after each step, as DDP's
``broadcast_buffers`` would. Only rank 0 writes logs, checkpoints and outputs.

Preemption. SLURM sends SIGTERM before it requeues (``--requeue``) or kills a job. The
trainer installs :func:`sigterm_flag` for the length of the loop; at the end of the step in
progress it saves a checkpoint atomically and raises :class:`Preempted`, which the CLI turns
into exit status :data:`PREEMPTED_EXIT_CODE` (143 = 128 + SIGTERM, what a shell reports for
a process ended by SIGTERM). The run's final outputs are not written then; rerunning the same
command resumes from the checkpoint and ends with bit-identical weights.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

PREEMPTED_EXIT_CODE = 143


class Preempted(Exception):  # noqa: N818  (a signal, not an error: the name says what happened)
    """SIGTERM arrived: the state was checkpointed at ``step``; rerun to resume."""

    def __init__(self, step: int):
        self.step = step
        super().__init__(f"preempted by SIGTERM: checkpoint saved at step {step}; rerun to resume")


@dataclass(frozen=True)
class DistEnv:
    """This process's place among the run's ranks (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n``."""
        if n % self.world_size:
            raise ValueError(
                f"a global batch of {n} cannot be split evenly over {self.world_size} ranks"
                " (batch_size, and batch_size // 2 with pl_weight > 0, must be multiples of it)"
            )
        k = n // self.world_size
        return slice(self.rank * k, (self.rank + 1) * k)

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """Mean over ranks of a tensor (a copy; identity in a single process)."""
        if not self.enabled:
            return t
        t = t.detach().clone()
        dist.all_reduce(t)
        return t / self.world_size

    def any(self, flag: bool, device: str) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


@contextmanager
def session(device: str) -> Iterator[DistEnv]:
    """The run's :class:`DistEnv`; initialises (and afterwards destroys) the process group
    when launched by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield DistEnv()
        return
    rank = int(os.environ["RANK"])
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield DistEnv(rank, world)
    finally:
        if owned:
            dist.destroy_process_group()


def average_gradients(module: nn.Module, loss: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Average the gradients of ``module`` over ranks in place; return the mean loss.

    Only parameters that have a gradient take part (the same ones on every rank, as every
    rank runs the same code), so Adam still skips the ones a loss did not reach.
    """
    if not env.enabled:
        return loss.detach()
    params = [p for p in module.parameters() if p.grad is not None]
    flat = torch.cat([p.grad.flatten() for p in params] + [loss.detach().float().flatten()])
    dist.all_reduce(flat)
    flat /= env.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n
    return flat[-1]


def broadcast_module(module: nn.Module, env: DistEnv, buffers_only: bool = False) -> None:
    """Copy rank 0's buffers (and parameters unless ``buffers_only``) to every rank."""
    if not env.enabled:
        return
    tensors = list(module.buffers()) + ([] if buffers_only else list(module.parameters()))
    with torch.no_grad():
        for t in tensors:
            buf = t.data.contiguous()  # channels_last tensors are copied, sent, copied back
            dist.broadcast(buf, src=0)
            if buf.data_ptr() != t.data_ptr():
                t.data.copy_(buf)


@contextmanager
def sigterm_flag() -> Iterator[threading.Event]:
    """An event set by SIGTERM while the block runs; the previous handler is restored after.

    Outside the main thread (where Python cannot install handlers) the event is never set.
    """
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
