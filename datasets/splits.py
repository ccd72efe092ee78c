"""Seeded, leakage-free subsets.

A split is decided per group (a patient, or an image when patients are unknown), never
per augmented sample, so every image of one patient lands in one subset. Groups are
ranked by a SHA-256 hash of ``"{seed}:{group}"``: the ranking does not depend on file
order, the platform or numpy's RNG, and a group keeps its rank when others are added.
The held-out counts are exact (rounded half up), with at least one group held out
whenever there are two or more groups, so tiny datasets still get a validation set.

Byte-identical image files under different names (OpenIST holds one X-ray twice, each
copy with its own tracing) join one group when `select` is given their paths: a copy in
validation would score the model on an image it trained on.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import defaultdict
from typing import Callable, Iterable, Sequence

logger = logging.getLogger(__name__)

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


def _digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def identical_files(paths: Sequence[str]) -> list[list[int]]:
    """Indices of the files whose bytes are identical, in groups of two or more.

    Only files that share their size with another are read, so a folder without
    copies costs one stat per file.
    """
    by_size = defaultdict(list)
    for index, path in enumerate(paths):
        by_size[os.path.getsize(path)].append(index)
    copies = defaultdict(list)
    for same_size in by_size.values():
        if len(same_size) > 1:
            for index in same_size:
                copies[_digest(paths[index])].append(index)
    return sorted(group for group in copies.values() if len(group) > 1)


def merge_identical(groups: Sequence[str], paths: Sequence[str]) -> list[str]:
    """`groups` (one key per file in `paths`) with the groups of byte-identical files
    merged: each merged group takes the smallest of its keys, so the other groups
    keep their keys and their ranks."""
    parent = {group: group for group in groups}

    def root(group: str) -> str:
        while parent[group] != group:
            group = parent[group]
        return group

    for copies in identical_files(paths):
        logger.warning("byte-identical images kept in one subset: %s",
                       ", ".join(paths[i] for i in copies))
        keys = sorted({root(groups[i]) for i in copies})
        for key in keys[1:]:
            parent[key] = keys[0]
    return [root(group) for group in groups]


def select(items: Sequence, group_of: Callable, subset: str,
           fractions: Sequence[tuple[str, float]], rest: str = "train", seed: int = 0,
           path_of: Callable | None = None) -> list:
    """Keep the items whose group falls in `subset` ("all" keeps every item).

    Args:
        items: anything; `group_of(item)` gives its group key.
        subset: one of the names in `fractions`, `rest`, or "all".
        path_of: `path_of(item)` gives the item's image file; byte-identical files
            then share a subset (`merge_identical`).

    Raises:
        ValueError: an unknown subset name.
    """
    names = [name for name, _ in fractions] + [rest]
    if subset == "all":
        return list(items)
    if subset not in names:
        raise ValueError(f"unknown subset {subset!r}; expected one of {names + ['all']}")
    groups = [group_of(item) for item in items]
    if path_of is not None:
        groups = merge_identical(groups, [path_of(item) for item in items])
    subsets = assign(groups, fractions, rest, seed)
    return [item for item, group in zip(items, groups) if subsets[group] == subset]
