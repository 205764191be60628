"""The README's worked baseline example is real code: it registers and trains."""

from __future__ import annotations

import re
import subprocess
import sys

TRAIN_A_FEW_STEPS = """
import torch
from adaptivemix.data import DATASETS
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import METHODS, build_method
from adaptivemix.gan.trainer import build_state, train_step
from tests.helpers import tiny_run_config

method = build_method("flipmix", {"p": 0.3})
cfg = tiny_run_config("flipmix")
state = build_state(cfg, method, 1)
reals = DATASETS.get("digits")(16).images["train"]
logs = [train_step(state, method, build_adv_loss(cfg.adv_loss), reals, cfg) for _ in range(3)]
assert all(log is not None for log in logs), logs
print("flipmix trained", state.step)
"""


def test_readme_baseline_example_registers_and_trains(repo_root, tmp_path):
    readme = (repo_root / "README.md").read_text()
    block = re.search(r"```python\n# baselines/flipmix.py\n(.*?)```", readme, re.DOTALL)
    assert block, "the README lost its worked baseline example"
    script = tmp_path / "example.py"
    script.write_text(block.group(1) + TRAIN_A_FEW_STEPS)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        cwd=repo_root, env={"PYTHONPATH": str(repo_root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "flipmix trained 3" in result.stdout
