"""The GAN trainer: one loop for every method, no method-specific branches.

Per step: ``d_steps`` D steps (``method.d_loss``), each on fresh reals and z drawn from the
run's generator (reals converted by ``as_float_images``, optionally x-flipped), then one G
step (``method.g_loss``, reusing the last D step's G forward), then G's EMA update.
StyleGAN2's knobs (Karras et al. 2020, arXiv 1912.04958; stylegan2-ada-pytorch): lazy R1
(``r1_interval``), path-length regularisation (``pl_weight``/``pl_interval``), x-flips,
mixed precision (``amp``, CUDA only) and ``channels_last``; WGAN-GP's ``gp_lambda`` and
n_critic (``d_steps``). See :mod:`adaptivemix.gan.regularizers` for our reading of them.

Every ``log_every`` steps a JSON line is appended to the live log, every ``eval_every``
steps the ``evaluate`` callable measures the EMA generator and the discriminator
(``evaluate(G_ema, D)``: FID, D's feature spread...), and every ``checkpoint_every`` steps
the full state is saved atomically. After training (also when a resumed run had no step
left), rank 0 hands the final networks to ``on_finish`` (see :data:`Finish`) before the outputs are
written. A non-finite loss stops the run cleanly with ``status: diverged``. SIGTERM saves a
checkpoint at the end of the step in progress and raises :class:`Preempted`; torchrun
launches train data-parallel (both in :mod:`adaptivemix.gan.distributed`). Rank 0 holds the
run's lock (:mod:`adaptivemix.run_lock`) throughout: a second trainer of the run refuses.

    summary = train_gan(cfg, dataset, run_dir, state_dir, evaluate=my_metrics)
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from adaptivemix.config import GanRunConfig
from adaptivemix.data.base import ImageDataset, as_float_images
from adaptivemix.errors import ConfigError
from adaptivemix.gan import distributed
from adaptivemix.gan.augment import AugmentPipeline, DStepReport
from adaptivemix.gan.checkpoint import LIVE_LOG, reset_state_dir, save_checkpoint, try_resume
from adaptivemix.gan.distributed import DistEnv, Preempted
from adaptivemix.gan.ema import ModelEma
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import GanMethod, RunEnv, StepContext
from adaptivemix.gan.outputs import write_run_outputs
from adaptivemix.gan.regularizers import (
    PL_BATCH_SHRINK,
    adam_hparams,
    check_regularizers,
    d_ratio,
    g_ratio,
    path_length_penalty,
    pl_weight_at,
    r1_gamma_at,
)  # fmt: skip
from adaptivemix.gan.variants import build_variant
from adaptivemix.io import append_jsonl
from adaptivemix.models import build_models
from adaptivemix.run_lock import hold_run

__all__ = ["Preempted", "TrainState", "build_state", "train_gan", "train_step"]

#: ``evaluate(G_ema, D) -> {name: value}``: the values join the evaluation step's log row.
Evaluate = Callable[[torch.nn.Module, torch.nn.Module], dict[str, float]]
#: ``on_finish(G_ema, D, just_evaluated)``: called once on rank 0 with the final networks
#: (e.g. to save what D's features look like at the end); ``just_evaluated`` is true when the
#: last ``evaluate`` call of this process saw these very networks (a run that ended normally
#: evaluates its last step), so a hook may reuse what that call measured.
Finish = Callable[[torch.nn.Module, torch.nn.Module, bool], None]


@dataclass
class TrainState:
    G: torch.nn.Module
    D: torch.nn.Module
    ema: ModelEma
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    generator: torch.Generator
    augment: AugmentPipeline
    step: int = 0
    elapsed_s: float = 0.0  # training wall time (evaluations left out), summed over sessions
    session_eval_s: float = 0.0  # this process's evaluation time (not checkpointed)
    evaluated_step: int | None = None  # the step this process last evaluated at
    pl_mean: torch.Tensor = field(default_factory=lambda: torch.zeros(()))  # path length's a
    amp_dtype: torch.dtype | None = None  # autocast dtype of the forward passes, None: off
    scalers: dict[str, torch.amp.GradScaler] | None = None  # "d"/"g" with float16 autocast
    dist: DistEnv = field(default_factory=DistEnv)
    method: GanMethod = field(default_factory=GanMethod)  # checkpointed via its state_dict

    @property
    def G_ema(self) -> torch.nn.Module:
        return self.ema.module


def ema_decay(cfg: GanRunConfig) -> float:
    """StyleGAN2's EMA: half-life of ``ema_kimg`` thousand images, whatever the batch size."""
    return 0.5 ** (cfg.batch_size / (cfg.ema_kimg * 1000.0)) if cfg.ema_kimg > 0 else 0.0


def check_precision(amp: bool, device: str, key: str = "gan.amp") -> None:
    """Mixed precision is implemented for CUDA only (checked again at run time: a job may
    be started without the workflow's config check)."""
    if amp and not str(device).startswith("cuda"):
        raise ConfigError(
            key, amp, f"false on device '{device}' (mixed precision is implemented for CUDA only)"
        )


def precision(cfg: GanRunConfig) -> tuple[torch.dtype | None, dict | None]:
    """Autocast dtype and GradScalers: bfloat16 (no scaler needed) where the GPU has it,
    else float16 with one GradScaler per network. Our choice: bfloat16's range makes the
    penalties' inner gradients (R1, GP, path length) safe from float16 underflow."""
    if not cfg.amp:
        return None, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, {"d": torch.amp.GradScaler("cuda"), "g": torch.amp.GradScaler("cuda")}


def build_state(
    cfg: GanRunConfig,
    method: GanMethod,
    channels: int,
    augment: AugmentPipeline | None = None,
    env: RunEnv | None = None,
    dist: DistEnv | None = None,
) -> TrainState:
    """Networks (prepared by the method), EMA, optimizers and the run's generator.

    Adam's lr and betas of a lazily regularised network are adjusted by k/(k+1) (StyleGAN2).
    """
    check_precision(cfg.amp, cfg.device)
    G, D = build_models(
        cfg.arch, cfg.resolution, channels, cfg.z_dim, cfg.g_width, cfg.d_width, cfg.seed,
        cfg.arch_options,
    )  # fmt: skip
    check_regularizers(G, cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # modules a method adds are initialised from the seed too
        G, D = method.prepare(G.to(cfg.device), D.to(cfg.device), env or RunEnv(cfg.device))
    if cfg.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    lr_g, betas_g = adam_hparams(cfg.lr_g, cfg.betas, g_ratio(cfg))
    lr_d, betas_d = adam_hparams(cfg.lr_d, cfg.betas, d_ratio(cfg))
    amp_dtype, scalers = precision(cfg)
    return TrainState(
        G=G,
        D=D,
        ema=ModelEma(G, decay=ema_decay(cfg)),
        opt_g=torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas_g),
        opt_d=torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas_d),
        generator=torch.Generator(cfg.device).manual_seed(cfg.seed),
        augment=augment or AugmentPipeline(),
        pl_mean=torch.zeros((), device=cfg.device),
        amp_dtype=amp_dtype,
        scalers=scalers,
        dist=dist or DistEnv(),
        method=method,
    )


def sample_reals(state: TrainState, reals: torch.Tensor, cfg: GanRunConfig) -> torch.Tensor:
    """The global batch of reals (float, [-1, 1]); each image x-flipped with probability 1/2
    when ``xflip`` (one draw per image from the run's generator; none when off)."""
    gen = state.generator
    idx = torch.randint(reals.shape[0], (cfg.batch_size,), generator=gen, device=gen.device)
    real = as_float_images(reals[idx.to(reals.device)])
    if cfg.xflip:
        flip = torch.rand(cfg.batch_size, generator=gen, device=gen.device) < 0.5
        real = torch.where(flip.to(real.device).view(-1, 1, 1, 1), real.flip(-1), real)
    if cfg.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    return real


def _autocast(state: TrainState):
    if state.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=state.amp_dtype)


def rank_generator(state: TrainState, cfg: GanRunConfig, d_index: int) -> torch.Generator:
    """The generator of draws made inside a step (G's noise, augmentations, a method's own
    draws): the run's generator in a single process; under DDP, one per rank and D step,
    seeded from (seed, rank, D step), so ranks draw independently (as upstream's per-rank
    seeds) while the run stays a function of its seed and needs no extra checkpoint state."""
    if not state.dist.enabled:
        return state.generator
    entropy = [cfg.seed, state.dist.rank, d_index]
    seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
    return torch.Generator(cfg.device).manual_seed(seed)


def _context(state, adv, reals, cfg, d_index: int, keep_graph: bool, record_maps=False):
    """One D step's context (this rank's rows) and the global real batch; with
    ``record_maps``, G's stage maps of the forward that made the fakes too."""
    gen, rows = state.generator, state.dist.rows(cfg.batch_size)
    real = sample_reals(state, reals, cfg)
    z = torch.randn(cfg.batch_size, cfg.z_dim, generator=gen, device=gen.device)[rows]
    local = rank_generator(state, cfg, d_index)
    maps = {} if record_maps else None
    with _autocast(state), torch.set_grad_enabled(keep_graph and torch.is_grad_enabled()):
        fake = state.G(z, generator=local, **({"maps": maps} if record_maps else {}))
    ctx = StepContext(
        state.G, state.D, real[rows], fake, adv, local, r1_gamma_at(d_index, cfg), state.step,
        z, augment=lambda x: state.augment(x, local), gp_lambda=cfg.gp_lambda,
        r1_interval=cfg.r1_interval, g_maps=maps,
    )  # fmt: skip
    return ctx, real


def train_step(state, method, adv, reals: torch.Tensor, cfg: GanRunConfig) -> dict | None:
    """``d_steps`` D steps and one G step. Returns the step's logs, or None if a loss is not
    finite (the state is then left as it was after the last finite update). The
    augmentations see each D step's real logits after the G step, so that every pass of a
    step sees the same augmentation strength (upstream adjusts ADA's p between iterations)."""
    reports = []
    for j in range(cfg.d_steps):
        d_index = state.step * cfg.d_steps + j
        last = j == cfg.d_steps - 1
        ctx, _ = _context(state, adv, reals, cfg, d_index, last, method.records_g_maps)
        with _autocast(state):
            d_loss, d_logs = method.d_loss(ctx)
        if not _optimise(state, "d", d_loss):
            return None
        reports.append(DStepReport(ctx.real_logits, cfg.batch_size, state.dist, cfg.device))
    state.D.requires_grad_(False)  # the G step's graph through D need not keep D's grads
    with _autocast(state):
        g_loss, g_logs = method.g_loss(ctx)
        pl_loss, pl_logs, pl_mean = _path_length(state, cfg, ctx.generator)
    state.D.requires_grad_(True)
    if not _optimise(state, "g", g_loss + pl_loss):
        return None
    if pl_mean is not None:
        state.pl_mean.copy_(pl_mean)
    for report in reports:
        d_logs.update(state.augment.update(report))
    state.step += 1
    for net in (state.G, state.D):
        distributed.broadcast_module(net, state.dist, buffers_only=True)
    state.ema.update(state.G, step=state.step)
    return {
        "d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()),
        **d_logs, **g_logs, **pl_logs,
    }  # fmt: skip


def _path_length(state: TrainState, cfg: GanRunConfig, local: torch.Generator):
    """(weighted penalty, logs, new running mean) on lazy steps; (0, {}, None) otherwise.
    z and y are drawn for the global batch from the run's generator (G's own noise from
    ``local``, the step's generator)."""
    weight = pl_weight_at(state.step, cfg)
    if weight == 0:
        return 0.0, {}, None
    gen = state.generator
    n = max(cfg.batch_size // PL_BATCH_SHRINK, 1)
    z = torch.randn(n, cfg.z_dim, generator=gen, device=gen.device)[state.dist.rows(n)]
    penalty, lengths, new_mean = path_length_penalty(
        state.G, z, state.pl_mean, local, state.dist, noise_generator=gen
    )
    pen = penalty.mean()
    logs = {
        "pl_penalty": float(pen.detach()), "pl_length": float(lengths.detach().mean()),
        "pl_mean": float(new_mean),
    }  # fmt: skip
    return weight * pen, logs, new_mean


def _optimise(state: TrainState, net: str, loss: torch.Tensor) -> bool:
    """Backward, average gradients over ranks, step; False (no step) if the loss of any
    rank is not finite."""
    opt, module = (state.opt_d, state.D) if net == "d" else (state.opt_g, state.G)
    scaler = state.scalers[net] if state.scalers else None
    opt.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler else loss).backward()
    if not torch.isfinite(distributed.average_gradients(module, loss, state.dist)):
        return False
    if scaler:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    return True


def train_gan(
    cfg: GanRunConfig,
    dataset: ImageDataset,
    run_dir: Path,
    state_dir: Path,
    evaluate: Evaluate | None = None,
    callbacks: Sequence[Callable[[int], None]] = (),
    env: RunEnv | None = None,
    on_finish: Finish | None = None,
) -> dict:
    """Train (resuming from ``state_dir`` if possible) and write the run's outputs.

    Under torchrun every rank calls this; rank 0 alone writes, evaluates and calls
    ``on_finish`` (after the loop, diverged or not, before the outputs are written).
    Raises :class:`Preempted` after checkpointing when SIGTERM arrives (outputs are then
    not written and ``on_finish`` is not called). Raises :class:`RunLockedError` before touching
    the run when another trainer holds its state folder (rank 0 holds the lock).
    """
    hooks = (evaluate, callbacks, on_finish)
    with distributed.session(cfg.device) as dist:
        refused = lambda failed: dist.any(failed, cfg.device)  # noqa: E731
        with hold_run(state_dir, take=dist.is_main, any_refused=refused):
            return _train(cfg, dataset, Path(run_dir), Path(state_dir), hooks, env, dist)


def _train(cfg, dataset, run_dir, state_dir, hooks, env, dist) -> dict:
    evaluate, callbacks, on_finish = hooks
    method, augment = build_variant(cfg.method, cfg.method_options)
    adv = build_adv_loss(cfg.adv_loss)
    state = build_state(cfg, method, dataset.channels, augment, env, dist)
    dist.rows(cfg.batch_size)  # refuse an uneven split before anything is written
    if cfg.pl_weight > 0:
        dist.rows(max(cfg.batch_size // PL_BATCH_SHRINK, 1))
    resumed = try_resume(state_dir, state, cfg.to_dict(), truncate_log=dist.is_main)
    resumed_from = state.step if resumed else None
    elapsed_before = state.elapsed_s
    dist.barrier()  # every rank has read the checkpoint before rank 0 may remove it
    if not resumed and dist.is_main:
        reset_state_dir(state_dir)
    for net in (state.G, state.D, state.G_ema):
        distributed.broadcast_module(net, dist)
    reals = dataset.images["train"].to(cfg.device)
    status = _run_loop(state, method, adv, reals, cfg, state_dir, evaluate, callbacks)
    if dist.is_main and on_finish is not None:
        just_evaluated = status == "ok" and state.evaluated_step == state.step
        with _evaluation_time(state):
            on_finish(state.G_ema, state.D, just_evaluated)
    summary = {
        "status": status,
        "steps": state.step,
        "diverged_at_step": state.step + 1 if status == "diverged" else None,
        "resumed_from_step": resumed_from,
        "train_seconds": round(state.elapsed_s, 3),
        "session_seconds": round(state.elapsed_s - elapsed_before, 3),  # this process's share
        "session_eval_seconds": round(state.session_eval_s, 3),  # and its evaluations'
        "method_details": {"method": method.describe(), "augment": augment.describe()},
    }
    if dist.is_main:
        write_run_outputs(run_dir, state.G_ema, cfg, summary, dataset.channels)
        shutil.copyfile(state_dir / LIVE_LOG, run_dir / "log.jsonl")
    dist.barrier()
    return summary


def _run_loop(state, method, adv, reals, cfg, state_dir, evaluate, callbacks) -> str:
    started, elapsed_before = time.perf_counter(), state.elapsed_s
    main = state.dist.is_main
    live_log = state_dir / LIVE_LOG
    bar = tqdm(
        total=cfg.steps, initial=state.step, file=sys.stderr, mininterval=10, ascii=True,
        disable=not main,
    )  # fmt: skip
    status = "ok"
    with distributed.sigterm_flag() as sigterm, contextlib.closing(bar):
        while state.step < cfg.steps:
            logs = train_step(state, method, adv, reals, cfg)
            spent = time.perf_counter() - started - state.session_eval_s
            state.elapsed_s = elapsed_before + spent
            if logs is None:
                status = "diverged"
                if main:
                    append_jsonl(live_log, {"step": state.step + 1, "status": "diverged"})
                break
            row = _log_row(state, cfg, logs, evaluate)
            if row is not None and main:
                append_jsonl(live_log, row)
            saved = state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps
            if saved and main:
                save_checkpoint(state_dir, state, cfg.to_dict())
            bar.update(1)
            for callback in callbacks:
                callback(state.step)
            if state.step < cfg.steps and state.dist.any(sigterm.is_set(), cfg.device):
                _preempt(state, cfg, state_dir, saved)
    return status


def _preempt(state, cfg, state_dir, saved: bool) -> None:
    if state.dist.is_main and not saved:
        save_checkpoint(state_dir, state, cfg.to_dict())
    state.dist.barrier()
    raise Preempted(state.step)


def _log_row(state, cfg, logs, evaluate) -> dict | None:
    step = state.step
    is_eval = evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.steps)
    if not is_eval and step % cfg.log_every != 0:
        return None
    row = {"step": step, "kimg": step * cfg.batch_size / 1000.0, **_mean_logs(state, logs, cfg)}
    row["time_s"] = round(state.elapsed_s, 3)
    if is_eval and state.dist.is_main:
        with _evaluation_time(state):
            row.update(evaluate(state.G_ema, state.D))
        state.evaluated_step = step
    return row


@contextlib.contextmanager
def _evaluation_time(state: TrainState):
    """Adds the block's wall time to ``state.session_eval_s`` (left out of ``elapsed_s``)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        state.session_eval_s += time.perf_counter() - started


def _mean_logs(state: TrainState, logs: dict, cfg: GanRunConfig) -> dict:
    """The logged values averaged over ranks (each rank saw its own rows of the batch)."""
    if not state.dist.enabled:
        return logs
    keys = sorted(logs)
    values = state.dist.mean(torch.tensor([float(logs[k]) for k in keys], device=cfg.device))
    return dict(zip(keys, values.tolist(), strict=True))
