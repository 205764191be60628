"""StyleGAN2's regularisers: lazy R1 scheduling and path-length regularisation.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020,
arXiv 1912.04958, §3.2 (lazy regularisation) and §3.2/App. B (path length). Constants and
the order of operations follow NVIDIA's stylegan2-ada-pytorch (``training/loss.py``,
``training/training_loop.py``): path-length batch shrink 2, decay 0.01, ``pl_noise`` scaled
by 1/sqrt(H·W), penalty (‖J_w^T y‖ − a)² with ``a`` the running mean of the lengths;
a regulariser evaluated every k-th step is weighted by k, and the optimizer of that network
gets ``mb_ratio = k/(k+1)``: lr·ratio and beta**ratio.

Our interpretation, where we differ from upstream:
- Upstream takes a separate optimizer step for a regularisation phase (``Dreg``/``Greg``),
  hence k+1 steps per k minibatches and the k/(k+1) ratio. We add the regulariser to the
  k-th minibatch's loss instead (so every method's own ``d_loss`` keeps handling R1 through
  ``StepContext.r1_gamma``); the ratio is applied as upstream all the same, which keeps
  the effective Adam hyper-parameters of the paper's configs. No ratio when k = 1 (not lazy)
  or when the regulariser is off.
- Upstream lets 1% of the penalty's gradient flow through ``a`` (the just-updated mean); we
  treat ``a`` as a constant, so that under DDP every rank can update it from the all-ranks
  mean of the lengths and all ranks keep the same ``a``.
- ws of shape (N, num_ws, w_dim) give lengths sqrt(mean_ws Σ_w g²) as upstream; (N, w_dim)
  gives the plain norm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from adaptivemix.gan.distributed import DistEnv
from adaptivemix.gan.methods import IncompatibleError

PL_BATCH_SHRINK = 2  # path-length batch = batch_size // 2 (upstream pl_batch_shrink)
PL_DECAY = 0.01  # running mean's update rate (upstream pl_decay)
SINGLE_PROCESS = DistEnv()


def _get(cfg, name: str):
    return cfg[name] if isinstance(cfg, Mapping) else getattr(cfg, name)


def lazy_weight(index: int, interval: int) -> float:
    """Weight of a lazy regulariser at the ``index``-th (0-based) step: ``interval`` on every
    ``interval``-th step starting with the first (upstream: ``batch_idx % interval == 0``),
    0 in between."""
    return float(interval) if index % interval == 0 else 0.0


def r1_gamma_at(d_index: int, cfg) -> float:
    """R1's γ for the ``d_index``-th D step: γ·k on lazy steps, 0 between (penalty γ/2·‖∇‖²)."""
    return _get(cfg, "r1_gamma") * lazy_weight(d_index, _get(cfg, "r1_interval"))


def pl_weight_at(g_index: int, cfg) -> float:
    """Path-length weight for the ``g_index``-th G step (weight·k on lazy steps, else 0)."""
    return _get(cfg, "pl_weight") * lazy_weight(g_index, _get(cfg, "pl_interval"))


def mb_ratio(interval: int, active: bool) -> float:
    """Upstream's minibatch ratio k/(k+1) for a lazily regularised network (1 when not lazy)."""
    return interval / (interval + 1) if active and interval > 1 else 1.0


def adam_hparams(
    lr: float, betas: tuple[float, float], ratio: float
) -> tuple[float, tuple[float, float]]:
    """Adam's (lr, betas) adjusted as upstream: lr·ratio, (β1**ratio, β2**ratio)."""
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)


def d_ratio(cfg) -> float:
    return mb_ratio(_get(cfg, "r1_interval"), _get(cfg, "r1_gamma") > 0)


def g_ratio(cfg) -> float:
    return mb_ratio(_get(cfg, "pl_interval"), _get(cfg, "pl_weight") > 0)


def has_w_space(G: nn.Module) -> bool:
    return callable(getattr(G, "mapping", None)) and callable(getattr(G, "synthesis", None))


def check_regularizers(G: nn.Module, cfg) -> None:
    """Refuse path-length regularisation for a G without a w-space (works on meta networks).

    ``cfg`` is a :class:`GanRunConfig` or the config's ``gan`` section (a dict).
    """
    weight = _get(cfg, "pl_weight")
    if weight > 0 and not has_w_space(G):
        raise IncompatibleError(
            f"pl_weight={weight} needs a generator with mapping(z) -> ws and "
            f"synthesis(ws, generator=None); {type(G).__name__} of arch "
            f"'{_get(cfg, 'arch')}' has no w-space (set pl_weight: 0 or use a style-based arch)"
        )


def path_length_penalty(
    G: nn.Module,
    z: torch.Tensor,
    pl_mean: torch.Tensor,
    generator: torch.Generator,
    dist: DistEnv = SINGLE_PROCESS,
    noise_generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-sample penalty, per-sample lengths ‖J_w^T y‖, new running mean ``a``).

    ``z`` holds this rank's rows of the path-length batch. The synthesis draws its own noise
    from ``generator``; y ~ N(0, I)/sqrt(H·W) is then drawn for the *global* batch from
    ``noise_generator`` (default ``generator``) and this rank's rows are used, so a DDP run
    sees the same y as a single process. The running mean is updated from the mean of the
    lengths over every rank. The caller stores the new mean.
    """
    ws = G.mapping(z)
    if not ws.requires_grad:
        ws = ws.detach().requires_grad_(True)
    img = G.synthesis(ws, generator=generator)
    h, w = img.shape[-2:]
    noise_gen = noise_generator or generator
    shape = (img.shape[0] * dist.world_size, *img.shape[1:])
    noise = torch.randn(shape, generator=noise_gen, device=noise_gen.device)[dist.rows(shape[0])]
    noise = noise.to(device=img.device, dtype=img.dtype) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    sq = grad.float().square().sum(-1)
    lengths = (sq.flatten(1).mean(1) if sq.dim() > 1 else sq).sqrt()
    batch_mean = dist.mean(lengths.detach().mean())
    new_mean = pl_mean.detach().lerp(batch_mean.to(pl_mean), PL_DECAY)
    return (lengths - new_mean).square(), lengths, new_mean
