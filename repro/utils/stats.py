"""Noise of a measured share, shared by the figures (which measure it) and the claim checks
(which read counts and derive it)."""

from __future__ import annotations


def binomial_se(share: float, n: int) -> float:
    """Standard error of a share of n draws; a share of 0 or 1 counts as 1/n or 1 - 1/n, so a
    share with no observed spread is not read as exact (n draws can miss events rarer than
    about 1/n)."""
    if n <= 0:
        return float("nan")
    p = min(max(share, 1 / n), 1 - 1 / n) if n > 1 else 0.5
    return (p * (1 - p) / n) ** 0.5
