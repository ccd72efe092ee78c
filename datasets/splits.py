"""Seeded, leakage-free subsets.

A split is decided per group (a patient, or an image when patients are unknown), never
per augmented sample, so every image of one patient lands in one subset. Groups are
ranked by a SHA-256 hash of ``"{seed}:{group}"``: the ranking does not depend on file
order, the platform or numpy's RNG, and a group keeps its rank when others are added.
The held-out counts are exact (rounded half up), with at least one group held out
whenever there are two or more groups, so tiny datasets still get a validation set.
"""
from __future__ import annotations

import hashlib
import math
from typing import Iterable, Sequence

LUNGS_VAL_FRACTION = 1 / 11   # train:val = 10:1
ISIC_TEST_FRACTION = 0.25     # 75/25 into (train+val)/test ...
ISIC_VAL_FRACTION = 0.25      # ... then 75/25 of train+val into train/val
SIIM_VAL_FRACTION = 1 / 11    # as the lungs: both are chest X-ray sets


def _rank(groups: Iterable[str], seed: int) -> list[str]:
    def key(group: str) -> str:
        return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()

    return sorted(set(groups), key=key)


def _held_out_count(n: int, fraction: float) -> int:
    if n < 2:
        return 0
    return min(n - 1, max(1, math.floor(n * fraction + 0.5)))


def assign(groups: Sequence[str], fractions: Sequence[tuple[str, float]], rest: str,
           seed: int = 0) -> dict[str, str]:
    """Give each group a subset name.

    Args:
        groups: group keys (duplicates allowed: one patient, several images).
        fractions: (subset, fraction) pairs taken in turn; each fraction is of the
            groups still left, so [("test", .25), ("val", .25)] is "75/25 then 75/25".
        rest: the subset of the groups left at the end.
        seed: changes the ranking.

    Returns:
        {group: subset}.
    """
    for name, fraction in fractions:
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"split fraction for {name!r} is {fraction}; expected [0, 1)")
    left = _rank(groups, seed)
    subsets: dict[str, str] = {}
    for name, fraction in fractions:
        count = _held_out_count(len(left), fraction) if fraction > 0 else 0
        subsets.update((group, name) for group in left[:count])
        left = left[count:]
    subsets.update((group, rest) for group in left)
    return subsets


def select(items: Sequence, group_of, subset: str, fractions: Sequence[tuple[str, float]],
           rest: str = "train", seed: int = 0) -> list:
    """Keep the items whose group falls in `subset` ("all" keeps every item).

    Args:
        items: anything; `group_of(item)` gives its group key.
        subset: one of the names in `fractions`, `rest`, or "all".

    Raises:
        ValueError: an unknown subset name.
    """
    names = [name for name, _ in fractions] + [rest]
    if subset == "all":
        return list(items)
    if subset not in names:
        raise ValueError(f"unknown subset {subset!r}; expected one of {names + ['all']}")
    subsets = assign([group_of(item) for item in items], fractions, rest, seed)
    return [item for item in items if subsets[group_of(item)] == subset]
