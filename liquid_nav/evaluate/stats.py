"""The statistics of an evaluation: Wilson score intervals for success rates, exact McNemar tests for paired
outcomes of two models on the same seeds, and Holm's step-down adjustment for many such tests."""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

Z_95 = 1.959963984540054  # two-sided 95 % standard normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> Tuple[float, float]:
    """Wilson score interval (no continuity correction) for ``successes`` out of ``trials``; (0, 1) for none."""
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    center = (rate + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials * trials)) / denominator
    return min(rate, max(0.0, center - half)), max(rate, min(1.0, center + half))  # rounding keeps the rate inside


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: seeds where only A succeeded (``only_a``) and
    where only B did (``only_b``); under the null each discordant pair is a fair coin."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a}, {only_b}")
    pairs = only_a + only_b
    if pairs == 0:
        return 1.0
    tail = sum(math.comb(pairs, k) for k in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2**pairs)


def holm_adjusted(p_values: Sequence[float]) -> List[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control over all the tests given)."""
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
