"""GAN evaluation as stylegan2-ada-pytorch's metrics: random noise inputs, mirrored reals with
``--mirror=1``, and reference statistics of another dataset (APA's ``--metricdata``).

Expected values are computed here by hand: the noise stream of a toy G from its documented
seeding, the x-flip statistics with NumPy on [reals; reals[..., ::-1]].
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_config import SMOKE, with_change
from torch import nn

from adaptivemix.config import (
    dataset_resolution,
    load_workflow_config,
    parse_reference_reals,
    run_reference,
)
from adaptivemix.data.base import ImageDataset
from adaptivemix.errors import ConfigError
from adaptivemix.metrics import fid as fid_module
from adaptivemix.metrics.backbones import ModuleBackbone
from adaptivemix.metrics.fid import (
    NOISE_SEED_OFFSET,
    ReferenceStats,
    compute_reference_stats,
    generate_images,
    protocol,
    protocol_fingerprint,
)
from adaptivemix.models.base import build_models
from adaptivemix.preflight import missing_inputs
from adaptivemix.report.claims import load_claims, match_claims, protocols_from_runs
from adaptivemix.report.collect import PROTOCOL_FIELDS, check_fingerprints, collect_runs
from adaptivemix.run_record import write_run_record

# --- random noise inputs ------------------------------------------------------------------


class NoiseOnlyG(nn.Module):
    """Image = 0·z + the noise input: the samples show exactly the noise G was given."""

    noise_inputs = True

    def __init__(self):
        super().__init__()
        self.const = nn.Parameter(torch.full((1, 1, 2, 2), 0.25))

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        shape = (z.shape[0], 1, 2, 2)
        if generator is None:
            return self.const.expand(shape) + 0 * z[:, :1, None, None]
        return torch.randn(shape, generator=generator, device=generator.device) * 0.1


def test_metric_samples_draw_fresh_noise_per_call_from_one_seeded_generator():
    G = NoiseOnlyG()
    torch.manual_seed(7)
    state = torch.get_rng_state()
    images = generate_images(G, n=5, z_dim=3, seed=11, batch_size=2)
    assert torch.equal(state, torch.get_rng_state())
    # by hand: one generator seeded with seed + offset, drawn batch after batch (2, 2, 1)
    gen = torch.Generator().manual_seed(11 + NOISE_SEED_OFFSET)
    expected = torch.cat([torch.randn((b, 1, 2, 2), generator=gen) * 0.1 for b in (2, 2, 1)])
    torch.testing.assert_close(images, expected, rtol=0, atol=0)
    flat = images.flatten(1)
    assert len({tuple(row.tolist()) for row in flat}) == 5  # no two samples share noise
    torch.testing.assert_close(generate_images(G, 5, 3, seed=11, batch_size=2), images)
    assert not torch.allclose(generate_images(G, 5, 3, seed=12, batch_size=2), images)
    const = generate_images(G, 5, 3, seed=11, batch_size=2, noise_mode="const")
    torch.testing.assert_close(const, torch.full((5, 1, 2, 2), 0.25))
    with pytest.raises(ValueError, match="noise_mode"):
        generate_images(G, 5, 3, seed=11, noise_mode="none")


def noisy_stylegan2() -> nn.Module:
    G, _ = build_models("stylegan2", 16, 1, 8, 8, 8, seed=0,
                        arch_options={"channel_base": 256, "channel_max": 32,
                                      "mapping_layers": 2, "mixing_prob": 0.9})  # fmt: skip
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)  # 0 at init: the noise would not show
    return G


def test_stylegan2_metric_samples_get_random_noise_and_the_same_latents():
    G = noisy_stylegan2().train()
    w_avg = G.w_avg.clone()
    a = generate_images(G, n=6, z_dim=8, seed=3, batch_size=4)
    assert G.training and torch.equal(G.w_avg, w_avg)  # mode restored, w_avg untouched
    torch.testing.assert_close(generate_images(G, 6, 8, seed=3, batch_size=4), a)
    const = generate_images(G, 6, 8, seed=3, batch_size=4, noise_mode="const")
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        by_hand = G.eval()(z).clamp(-1, 1)  # constant buffers, no mixing: the old samples
    torch.testing.assert_close(const, by_hand)
    assert not torch.allclose(a, const)
    # noise only (no style mixing in eval): the unmixed styles with the documented stream
    gen = torch.Generator().manual_seed(3 + NOISE_SEED_OFFSET)
    with torch.no_grad():
        ws = G.mapping(z, update_w_avg=False)
        mixed_free = torch.cat([G.synthesis(ws[:4], gen), G.synthesis(ws[4:], gen)])
    torch.testing.assert_close(a, mixed_free.clamp(-1, 1))


# --- mirrored reals -----------------------------------------------------------------------


class Flat(nn.Module):
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def toy_dataset(name: str = "toy", n: int = 7) -> ImageDataset:
    gen = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (n, 1, 3, 4), generator=gen, dtype=torch.uint8)
    empty = torch.zeros(0, 1, 3, 4, dtype=torch.uint8)
    images = {"train": train, "val": empty, "test": empty}
    labels = {s: torch.zeros(len(x), dtype=torch.int64) for s, x in images.items()}
    return ImageDataset(name, images, labels, num_classes=1)


def flat_backbone() -> ModuleBackbone:
    return ModuleBackbone(Flat(), "flat", "native", "ab" * 32, feature_dim=12, device="cpu")


def test_xflip_reference_is_the_statistics_of_reals_then_mirrored_reals(monkeypatch):
    monkeypatch.setattr(fid_module, "MIRROR_CHUNK", 3)  # mirrored in chunks of 3, 3, 1
    dataset = toy_dataset()
    ref = compute_reference_stats(dataset, "train", flat_backbone(), pr_k=2, xflip=True)
    reals = dataset.images["train"].numpy().astype(np.float64) / 127.5 - 1.0
    both = np.concatenate([reals, reals[..., ::-1]]).reshape(14, -1)
    np.testing.assert_allclose(ref.features, both, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ref.mu, both.mean(axis=0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ref.sigma, np.cov(both, rowvar=False), rtol=0, atol=1e-6)
    dist = np.sqrt(((both[:, None, :] - both[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(ref.real_radii, np.sort(dist, axis=1)[:, 2], atol=1e-6)
    assert ref.meta["n_real"] == 14 and ref.meta["xflip"] is True
    plain = compute_reference_stats(dataset, "train", flat_backbone())
    assert plain.meta["n_real"] == 7 and "xflip" not in plain.meta
    proto = protocol(flat_backbone(), ref, n_gen=10, run_dataset="toy")
    assert proto["reference_xflip"] is True and proto["n_real"] == 14
    assert "reference_xflip" not in protocol(flat_backbone(), plain, 10, run_dataset="toy")


# --- metric data --------------------------------------------------------------------------


def reference_of(dataset: ImageDataset, xflip: bool = False) -> ReferenceStats:
    return compute_reference_stats(dataset, "train", flat_backbone(), xflip=xflip)


def test_protocol_records_metric_data_noise_mode_and_changes_the_fingerprint():
    own, full = reference_of(toy_dataset("toy")), reference_of(toy_dataset("toy-full", n=9))
    base = protocol(flat_backbone(), own, n_gen=10, run_dataset="toy")
    assert not {"metric_data", "noise_mode", "reference_xflip"} & set(base)  # as before
    other = protocol(flat_backbone(), full, n_gen=10, run_dataset="toy")
    assert other["metric_data"] == "toy-full" and other["n_real"] == 9
    noisy = protocol(flat_backbone(), own, n_gen=10, noise_mode="random", run_dataset="toy")
    assert noisy["noise_mode"] == "random"
    flipped = protocol(flat_backbone(), reference_of(toy_dataset(), True), 10, run_dataset="toy")
    prints = {protocol_fingerprint(p) for p in (base, other, noisy, flipped)}
    assert len(prints) == 4


PAPER_LIKE = [
    {"arch": "dcgan", "datasets": ["digits", "stacked-digits"], "resolution": 16,
     "settings": {"xflip": True}},
    {"arch": "dcgan-cifar", "datasets": ["digits"], "resolution": 16, "settings": {}},
]  # fmt: skip


def config_with(metric_data: dict, experiments=PAPER_LIKE) -> dict:
    raw = copy.deepcopy(SMOKE)
    raw["gan"]["experiments"] = copy.deepcopy(experiments)
    raw["evaluate"]["metric_data"] = metric_data
    return load_workflow_config(raw)


def test_metric_data_and_xflip_choose_the_reference_file():
    config = config_with({"stacked-digits": "digits"})
    assert run_reference(config, "stacked-digits", "dcgan") == {
        "dataset": "digits", "split": "train", "xflip": True, "reals": "train-xflip"}  # fmt: skip
    assert run_reference(config, "digits", "dcgan")["dataset"] == "digits"
    assert run_reference(config, "digits", "dcgan-cifar")["reals"] == "train"
    assert parse_reference_reals("train-xflip") == ("train", True)
    assert parse_reference_reals("test") == ("test", False)
    default = load_workflow_config(SMOKE)  # no metric_data, no x-flips: paths as before
    assert run_reference(default, "digits", "dcgan") == {
        "dataset": "digits", "split": "train", "xflip": False, "reals": "train"}  # fmt: skip


def test_a_metric_only_dataset_is_prepared_at_its_runs_resolution_and_checked_for_a_copy():
    experiments = [{"arch": "dcgan", "datasets": ["digits"], "resolution": 32, "settings": {}}]
    config = config_with({"digits": "stacked-digits"}, experiments)
    assert dataset_resolution(config, "stacked-digits") == 32
    config = config_with({"digits": "cifar10-gan"}, experiments)
    lines = missing_inputs(config, prepared=lambda kind, name: False)
    assert any("sources.cifar10.root" in line for line in lines)


@pytest.mark.parametrize(
    "metric_data, fragments",
    [
        ({"digits": "ffhq-full"}, ["evaluate.metric_data.digits", "'ffhq-full'", "'ffhq256'"]),
        ({"digitz": "digits"}, ["evaluate.metric_data", "'digitz'", "'digits'"]),
        ({"digits": "cifar10-gan"}, ["metric_data.digits", "'cifar10-gan'", "16", "32"]),
    ],
)
def test_bad_metric_data_is_refused_by_the_validator(metric_data, fragments):
    cifar = {"arch": "dcgan-cifar", "datasets": ["cifar10-gan"], "resolution": 32,
             "settings": {}}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        config_with(metric_data, [*PAPER_LIKE, cifar])
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


def test_metric_data_needs_a_mapping_of_names():
    with pytest.raises(ConfigError, match=r"evaluate\.metric_data"):
        load_workflow_config(with_change("evaluate.metric_data", ["digits"]))


# --- aggregation refuses to pool the protocols ---------------------------------------------


def write_run(root, method: str, proto: dict):
    head = {"task": "gan", "dataset": "toy", "arch": "stylegan2", "method": method, "seed": 0,
            "status": "ok", "diverged_at_step": None, "steps": 1}  # fmt: skip
    write_run_record(root / method, head, {"fid": 1.0}, proto, {"train_seconds": 1.0})
    return root / method / "metrics.json"


@pytest.mark.parametrize("field", ["noise_mode", "reference_xflip", "metric_data"])
def test_aggregation_refuses_to_pool_old_and_new_protocols(tmp_path, field):
    own = reference_of(toy_dataset("toy"))
    old = protocol(flat_backbone(), own, n_gen=10, run_dataset="toy")
    new = {
        "noise_mode": protocol(flat_backbone(), own, 10, noise_mode="random", run_dataset="toy"),
        "reference_xflip": protocol(flat_backbone(), reference_of(toy_dataset(), True), 10),
        "metric_data": protocol(flat_backbone(), reference_of(toy_dataset("toy-full")), 10,
                                run_dataset="toy"),
    }[field]  # fmt: skip
    runs = collect_runs([write_run(tmp_path, "vanilla", old), write_run(tmp_path, "apa", new)])
    assert isinstance(runs, pd.DataFrame)
    with pytest.raises(ValueError, match=field):
        check_fingerprints(runs)


# --- claims measured against another dataset ----------------------------------------------

CLAIMS = Path(__file__).resolve().parent.parent / "config" / "claims.csv"
TF = "inception-legacy-tensorflow"


def claim_protocol(n_real: int, metric_data: str | None = None) -> dict:
    proto = {"backbone": TF, "resize": "legacy_tensorflow", "n_gen": 50000, "n_real": n_real,
             "reference_split": "train"}  # fmt: skip
    return proto | ({"metric_data": metric_data} if metric_data else {})


def apa_ffhq5k(protocol_of_runs: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    claims = load_claims(CLAIMS)
    claims = claims[(claims["paper"] == "APA") & (claims["run_dataset"] == "ffhq256-5k")]
    row = {"task": "gan", "dataset": "ffhq256-5k", "arch": "stylegan2", "method": "apa",
           "fid_mean": 14.0, "fid_std": 0.0, "fid_ci_low": 13.0, "fid_ci_high": 15.0,
           "n_seeds": 1, "protocol": "hand-built"}  # fmt: skip
    key = ("ffhq256-5k", "stylegan2", "apa")
    return match_claims(claims, pd.DataFrame([row]), {key: protocol_of_runs})


def test_a_claim_against_the_full_dataset_needs_runs_measured_against_it():
    _, not_run = apa_ffhq5k(claim_protocol(10000))  # measured against its own 5k (mirrored)
    assert not_run["reason"].tolist() == [
        "protocol differs: metric_data ours ffhq256-5k, claim ffhq256"
    ]
    reproduced, not_run = apa_ffhq5k(claim_protocol(140000, "ffhq256"))
    assert not_run.empty and reproduced["reported"].tolist() == [13.249]
    assert reproduced["deviation"].tolist() == pytest.approx([14.0 - 13.249])


def test_protocols_from_runs_take_metric_data_from_the_recorded_protocol():
    runs = pd.DataFrame({"dataset": ["d", "e"], "arch": ["a", "a"], "method": ["m", "m"],
                         "n_gen": [10, 10],
                         PROTOCOL_FIELDS: [{"metric_data": "full"}, {"n_gen": 10}]})  # fmt: skip
    assert protocols_from_runs(runs) == {
        ("d", "a", "m"): {"n_gen": 10, "metric_data": "full"},
        ("e", "a", "m"): {"n_gen": 10},
    }


def test_metric_data_of_a_claim_without_run_keys_is_refused(tmp_path):
    header, *_ = CLAIMS.read_text().splitlines()
    cells = dict.fromkeys(header.split(","), "")
    cells |= {"paper": "Toy", "table": "1", "task": "generation", "dataset": "D",
              "resolution": "16", "method": "M", "metric": "FID", "value": "1.0",
              "protocol": "p", "n_gen": "10", "n_real": "full", "reference_split": "train",
              "fid_mode": "clean", "seeds": "1", "metric_data": "digits"}  # fmt: skip
    path = tmp_path / "claims.csv"
    path.write_text(f"{header}\n{','.join(cells.values())}\n")
    with pytest.raises(ValueError, match=r"line 2, column 'metric_data': got 'digits'"):
        load_claims(path)
