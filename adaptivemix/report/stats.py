"""Summary statistics over seeds.

With 3-5 seeds per cell a normal-approximation interval is far too narrow, so the
confidence interval of the mean uses Student's t with n-1 degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy import stats


def mean_std_ci(values: Iterable[float], confidence: float = 0.95) -> dict[str, float | int]:
    """Mean, sample std (ddof=1), n and the two-sided Student-t CI of the mean.

    NaNs (e.g. metrics of diverged runs) are dropped first. With one value the mean is
    reported but spread and CI are NaN (one seed says nothing about variability); with no
    values everything but ``n`` is NaN.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return {"mean": nan, "std": nan, "n": 0, "ci_low": nan, "ci_high": nan}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "std": nan, "n": 1, "ci_low": nan, "ci_high": nan}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci_low": mean - half, "ci_high": mean + half}
