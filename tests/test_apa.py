"""APA (baselines/apa.py) against a reference written here from the official semantics
(EndlessSora/DeceiveD ``training/loss.py`` and ``training/training_loop.py``):

- D loss, G loss and D's gradients on a tiny StyleGAN2 at p = 0, 1 and 0.5, with R1;
- the adjustment of p over a scripted sequence of real logits, against hand arithmetic;
- the statistic counts D's logits on the replaced batch, not on the true reals, and under
  two gloo ranks spans both ranks' logits and the global batch;
- the state round-trips through a checkpoint file, and a short trainer run resumes exactly
  while images are being replaced.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import StepContext, build_method
from adaptivemix.gan.trainer import train_gan
from adaptivemix.io import load_torch, read_jsonl, save_torch
from adaptivemix.models.base import build_models
from tests.helpers import tiny_run_config

TINY = dict(channel_base=256, channel_max=32, mapping_layers=2, w_dim=32)  # as test_stylegan2
ADV = build_adv_loss("nonsaturating")
B, Z = 4, 8


def apa(**options):
    return build_method("apa", options)


def context(G, D, real, fake, seed, step=0, r1_gamma=0.0) -> StepContext:
    gen = torch.Generator().manual_seed(seed)
    return StepContext(G, D, real, fake, ADV, gen, r1_gamma=r1_gamma, step=step)


# --- losses and gradients against the official semantics ----------------------------------


def reference_d_loss(D, real, pseudo, fake, p, seed, gamma):
    """DeceiveD's Dgen + Dreal/Dr1 phases: one uniform per image, ``u < p`` replaces the
    real image by the stored G-phase image (``pseudo*flag + real*(1-flag)``); softplus
    losses; R1 = γ/2·Σ(∂ΣD/∂x)² per image w.r.t. the replaced batch, averaged."""
    u = torch.rand(real.shape[0], generator=torch.Generator().manual_seed(seed))
    flag = (u < p).float().view(-1, 1, 1, 1)
    x = (pseudo * flag + real * (1 - flag)).detach().requires_grad_(True)
    real_logits = D(x)
    (grad,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)
    loss_r1 = grad.square().sum([1, 2, 3]) * (gamma / 2)
    loss_gen = F.softplus(D(fake.detach())).mean()
    return loss_gen + (F.softplus(-real_logits) + loss_r1).mean(), flag


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_losses_and_d_gradients_match_the_official_semantics(p):
    G, D = build_models("stylegan2", 16, 1, Z, 0, 0, 0, arch_options=TINY)
    gen = torch.Generator().manual_seed(1)
    real = torch.rand(B, 1, 16, 16, generator=gen) * 2 - 1
    z_g, z_d = torch.randn(2, B, Z, generator=gen)
    fake_g = G(z_g, generator=torch.Generator().manual_seed(2))  # the G phase's images
    fake_d = G(z_d, generator=torch.Generator().manual_seed(3))  # the next D phase's fakes
    method, gamma, seed = apa(initial_p=p, adapt=False), 10.0, 4

    g_loss, _ = method.g_loss(context(G, D, real, fake_g, seed=0))
    expected_g = F.softplus(-D(fake_g)).mean()
    assert float(g_loss.detach()) == pytest.approx(float(expected_g.detach()), abs=1e-6)

    d_loss, logs = method.d_loss(context(G, D, real, fake_d, seed, r1_gamma=gamma))
    ours = torch.autograd.grad(d_loss, list(D.parameters()))
    expected, flag = reference_d_loss(D, real, fake_g.detach(), fake_d, p, seed, gamma)
    theirs = torch.autograd.grad(expected, list(D.parameters()))
    assert float(d_loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-5)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=0)
    assert logs["apa_pseudo"] == pytest.approx(float(flag.mean()))
    if p == 0.5:
        assert 0 < float(flag.sum()) < B, "pick a seed that replaces some images, not all"


# --- the adjustment of p --------------------------------------------------------------------


class ScriptedD(nn.Module):
    """D whose logit for an image is its first pixel, so images carry scripted logits."""

    def features(self, x):
        return x

    def head(self, f):
        return f[:, 0, 0, 0]


def images(logits) -> torch.Tensor:
    x = torch.zeros(len(logits), 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor(logits, dtype=torch.float32)
    return x


def run_steps(method, batches, first_step=0, count=None):
    """Step s: d_loss on batch s, then g_loss whose fakes are batch s+1 (so a replaced image
    carries the same logit as the real it replaces; a fresh run first stores batch 0, as if
    a G step came first). Returns the logged p of each step."""
    D, fake = ScriptedD(), images([-3.0] * len(batches[0]))
    if first_step == 0:
        method.g_loss(context(None, D, fake, images(batches[0]), seed=0))
    logged = []
    for s in range(len(batches) if count is None else count):
        step, real = first_step + s, images(batches[s])
        _, logs = method.d_loss(context(None, D, real, fake, seed=step, step=step))
        logged.append(logs["apa_p"])
        nxt = images(batches[min(s + 1, len(batches) - 1)])
        method.g_loss(context(None, D, real, nxt, seed=0, step=step))
    return logged


def test_p_follows_the_sign_rule_by_hand():
    # batch 5, interval 2: p moves by 5·2/(0.02·1000) = 0.5 per adjustment, target 0.6
    up, down = [1.0] * 5, [-1.0] * 5
    batches = [
        up, up,  # r = 1 > 0.6: +0.5
        up, up,  # again: p passes 1, not capped (upstream only floors it)
        [2.0, 1.0, 0.5, 3.0, -1.0], [1.0, 1.0, 1.0, 0.0, 0.0],  # r = 6/10 = target: no move
        down, down,  # r = -1: -0.5
        [1.0, 1.0, -1.0, -1.0, 0.0], [0.3, 0.0, 0.0, 0.0, -2.0],  # r = 0 < 0.6: -0.5
        down, down,  # 0.25 - 0.5 floors at 0
        up,
    ]  # fmt: skip
    method = apa(target=0.6, interval=2, apa_kimg=0.02, initial_p=0.25)
    expected = [0.25] * 2 + [0.75] * 2 + [1.25] * 4 + [0.75] * 2 + [0.25] * 2 + [0.0]
    assert run_steps(method, batches) == pytest.approx(expected, abs=1e-12)


def test_statistic_uses_the_replaced_batch():
    # every real says +1, every stored fake -1; at p = 1 all are replaced, so r_t = -1
    method = apa(interval=1, apa_kimg=0.004, initial_p=1.0)  # step 4/4 = 1
    D = ScriptedD()
    method.g_loss(context(None, D, images([1.0] * 4), images([-1.0] * 4), 0))
    _, logs = method.d_loss(context(None, D, images([1.0] * 4), images([-1.0] * 4), 0, 0))
    assert logs["apa_rt"] == -1.0 and logs["apa_pseudo"] == 1.0
    method.g_loss(context(None, D, images([1.0] * 4), images([-1.0] * 4), 0))
    _, logs = method.d_loss(context(None, D, images([1.0] * 4), images([-1.0] * 4), 1, 1))
    assert logs["apa_p"] == 0.0


def _ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    import baselines.apa  # noqa: F401  (a spawned process registers the method itself)

    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}",
                                         rank=rank, world_size=2)  # fmt: skip
    try:
        # rank 0's reals all say +1, rank 1's three of four say -1: r_t = 2/8 over both
        # ranks (rank 0 alone: 1); p moves by the global batch, 8·1/16 = 0.5
        method = apa(interval=1, apa_kimg=0.016, initial_p=1.0)
        logged = run_steps(method, [[1.0] * 4 if rank == 0 else [-1.0, -1.0, -1.0, 1.0]] * 2)
        torch.save(logged, f"{out_dir}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_statistic_and_step_span_all_ranks(tmp_path):
    torch.multiprocessing.spawn(
        _ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True
    )
    for rank in (0, 1):
        assert torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) == [1.0, 0.5]


def test_fixed_p_does_not_adapt():
    method = apa(initial_p=0.3, adapt=False, interval=1)
    assert run_steps(method, [[5.0] * 4] * 5) == [0.3] * 5


def test_bad_options_name_the_key():
    with pytest.raises(ConfigError, match=r"gan\.method_options\.apa\.target"):
        apa(target=1.5)
    with pytest.raises(ConfigError, match=r"gan\.method_options\.apa\.interval"):
        apa(interval=0)


# --- resume ---------------------------------------------------------------------------------


def test_state_round_trips_through_a_checkpoint_file(tmp_path):
    gen = torch.Generator().manual_seed(5)
    batches = (torch.randn(12, 6, generator=gen)).tolist()
    options = dict(interval=3, apa_kimg=0.06, initial_p=0.4)  # p moves by 6·3/60 = 0.3
    straight = apa(**options)
    full = run_steps(straight, batches)
    first = apa(**options)
    run_steps(first, batches, count=7)  # steps 0-6: the last G step stored batch 7
    save_torch(tmp_path / "state.pt", {"method": first.state_dict()})
    second = apa(**options)
    second.load_state_dict(load_torch(tmp_path / "state.pt")["method"])
    assert second.state_dict().keys() == first.state_dict().keys()
    rest = run_steps(second, batches[7:], first_step=7)
    assert full[7:] == rest
    assert len(set(full)) > 2  # p really moved


def test_short_training_run_replaces_images_and_resumes_exactly(tmp_path, digits16):
    options = {"apa": {"initial_p": 0.5, "interval": 2, "apa_kimg": 0.2}}
    cfg = tiny_run_config("apa", method_options=options, r1_gamma=1.0)

    def run(name, callbacks=()):
        train_gan(cfg, digits16, tmp_path / name / "run", tmp_path / name / "state",
                  callbacks=callbacks)  # fmt: skip
        log = read_jsonl(tmp_path / name / "run" / "log.jsonl")
        return [{k: v for k, v in r.items() if k != "time_s"} for r in log]

    def die_at_7(step):
        if step == 7:  # the last checkpoint was written at step 4
            raise KeyboardInterrupt

    straight = run("straight")
    with pytest.raises(KeyboardInterrupt):
        run("cut", [die_at_7])
    assert run("cut") == straight
    assert any(0 < r["apa_pseudo"] < 1 for r in straight)
    assert len({r["apa_p"] for r in straight}) > 1
    saved = load_torch(tmp_path / "straight/state/checkpoint.pt")["method"]
    assert saved["pseudo"].shape == (cfg.batch_size, 1, 16, 16)
