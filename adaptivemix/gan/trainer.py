"""The GAN trainer: one loop for every method, no method-specific branches.

Per step: sample reals and z from the run's generator, run G once, take one D step
(``method.d_loss``) and one G step (``method.g_loss``, reusing G's forward), update G's EMA.
Every ``log_every`` steps a JSON line is appended to the live log, every ``eval_every``
steps the EMA generator is evaluated (FID/KID) by the ``evaluate`` callable, and every
``checkpoint_every`` steps the full state is saved atomically. A non-finite loss stops the
run cleanly with ``status: diverged``.

    summary = train_gan(cfg, dataset, run_dir, state_dir, evaluate=my_fid)
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from timm.utils import ModelEmaV3
from tqdm import tqdm

from adaptivemix.config import GanRunConfig
from adaptivemix.data.base import ImageDataset
from adaptivemix.gan.augment import AugmentPipeline
from adaptivemix.gan.checkpoint import LIVE_LOG, reset_state_dir, save_checkpoint, try_resume
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import GanMethod, RunEnv, StepContext
from adaptivemix.gan.outputs import write_run_outputs
from adaptivemix.gan.variants import build_variant
from adaptivemix.io import append_jsonl
from adaptivemix.models import build_models

Evaluate = Callable[[torch.nn.Module], dict[str, float]]


@dataclass
class TrainState:
    G: torch.nn.Module
    D: torch.nn.Module
    ema: ModelEmaV3
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    generator: torch.Generator
    augment: AugmentPipeline
    step: int = 0
    elapsed_s: float = 0.0  # training wall time, summed over resumed sessions

    @property
    def G_ema(self) -> torch.nn.Module:
        return self.ema.module


def ema_decay(cfg: GanRunConfig) -> float:
    """StyleGAN2's EMA: half-life of ``ema_kimg`` thousand images, whatever the batch size."""
    return 0.5 ** (cfg.batch_size / (cfg.ema_kimg * 1000.0)) if cfg.ema_kimg > 0 else 0.0


def build_state(
    cfg: GanRunConfig,
    method: GanMethod,
    channels: int,
    augment: AugmentPipeline | None = None,
    env: RunEnv | None = None,
) -> TrainState:
    """Networks (prepared by the method), EMA, optimizers and the run's generator."""
    G, D = build_models(
        cfg.arch, cfg.resolution, channels, cfg.z_dim, cfg.g_width, cfg.d_width, cfg.seed
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # modules a method adds are initialised from the seed too
        G, D = method.prepare(G.to(cfg.device), D.to(cfg.device), env or RunEnv(cfg.device))
    return TrainState(
        G=G,
        D=D,
        ema=ModelEmaV3(G, decay=ema_decay(cfg)),
        opt_g=torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=cfg.betas),
        opt_d=torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas),
        generator=torch.Generator(cfg.device).manual_seed(cfg.seed),
        augment=augment or AugmentPipeline(),
    )


def train_step(state, method, adv, reals: torch.Tensor, cfg: GanRunConfig) -> dict | None:
    """One D step and one G step. Returns the step's logs, or None if a loss is not finite."""
    gen = state.generator
    idx = torch.randint(reals.shape[0], (cfg.batch_size,), generator=gen, device=gen.device)
    z = torch.randn(cfg.batch_size, cfg.z_dim, generator=gen, device=gen.device)
    ctx = StepContext(
        state.G, state.D, reals[idx], state.G(z), adv, gen, cfg.r1_gamma, state.step, z,
        augment=lambda x: state.augment(x, gen),
    )  # fmt: skip
    d_loss, d_logs = method.d_loss(ctx)
    if not torch.isfinite(d_loss):
        return None
    _optimise(state.opt_d, d_loss)
    d_logs.update(state.augment.update(state.D, ctx.real, state.step, gen))
    state.D.requires_grad_(False)  # the G step's graph through D need not keep D's grads
    g_loss, g_logs = method.g_loss(ctx)
    state.D.requires_grad_(True)
    if not torch.isfinite(g_loss):
        return None
    _optimise(state.opt_g, g_loss)
    state.step += 1
    state.ema.update(state.G, step=state.step)
    return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()), **d_logs, **g_logs}


def _optimise(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def train_gan(
    cfg: GanRunConfig,
    dataset: ImageDataset,
    run_dir: Path,
    state_dir: Path,
    evaluate: Evaluate | None = None,
    callbacks: Sequence[Callable[[int], None]] = (),
    env: RunEnv | None = None,
) -> dict:
    """Train (resuming from ``state_dir`` if possible) and write the run's outputs."""
    run_dir, state_dir = Path(run_dir), Path(state_dir)
    method, augment = build_variant(cfg.method, cfg.method_options)
    adv = build_adv_loss(cfg.adv_loss)
    state = build_state(cfg, method, dataset.channels, augment, env)
    resumed_from = state.step if try_resume(state_dir, state, cfg.to_dict()) else None
    if resumed_from is None:
        reset_state_dir(state_dir)
    reals = dataset.images["train"].to(cfg.device)
    status = _run_loop(state, method, adv, reals, cfg, state_dir, evaluate, callbacks)
    summary = {
        "status": status,
        "steps": state.step,
        "diverged_at_step": state.step + 1 if status == "diverged" else None,
        "resumed_from_step": resumed_from,
        "train_seconds": round(state.elapsed_s, 3),
        "method_details": {"method": method.describe(), "augment": augment.describe()},
    }
    write_run_outputs(run_dir, state.G_ema, cfg, summary, dataset.channels)
    shutil.copyfile(state_dir / LIVE_LOG, run_dir / "log.jsonl")
    return summary


def _run_loop(state, method, adv, reals, cfg, state_dir, evaluate, callbacks) -> str:
    started, elapsed_before = time.perf_counter(), state.elapsed_s
    live_log = state_dir / LIVE_LOG
    bar = tqdm(total=cfg.steps, initial=state.step, file=sys.stderr, mininterval=10, ascii=True)
    status = "ok"
    while state.step < cfg.steps:
        logs = train_step(state, method, adv, reals, cfg)
        state.elapsed_s = elapsed_before + time.perf_counter() - started
        if logs is None:
            status = "diverged"
            append_jsonl(live_log, {"step": state.step + 1, "status": "diverged"})
            break
        row = _log_row(state, cfg, logs, evaluate)
        if row is not None:
            append_jsonl(live_log, row)
        if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
            save_checkpoint(state_dir, state, cfg.to_dict())
        bar.update(1)
        for callback in callbacks:
            callback(state.step)
    bar.close()
    return status


def _log_row(state, cfg, logs, evaluate) -> dict | None:
    step = state.step
    is_eval = evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.steps)
    if not is_eval and step % cfg.log_every != 0:
        return None
    row = {"step": step, "kimg": step * cfg.batch_size / 1000.0, **logs}
    row["time_s"] = round(state.elapsed_s, 3)
    if is_eval:
        row.update(evaluate(state.G_ema))
    return row
