"""Noise of a measured share, shared by the figures (which measure it) and the claim checks
(which read counts and derive it)."""

from __future__ import annotations


def binomial_se(share: float, n: int) -> float:
    """Standard error of a share of n draws, at the rule-of-succession estimate
    p = (successes + 1) / (n + 2): a share of 0 or 1 is not read as exact (n draws can miss
    events rarer than about 1/n), and every count of successes gives its own se (clamping the
    share to [1/n, 1 - 1/n] gave all n and n - 1 of n the same one, a cell with no seed
    spread for the drift gate)."""
    if n <= 0:
        return float("nan")
    p = (share * n + 1) / (n + 2)
    return (p * (1 - p) / n) ** 0.5
