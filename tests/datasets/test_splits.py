"""datasets/splits.py: seeded, group-wise subsets."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datasets import splits

ISIC = [("test", splits.ISIC_TEST_FRACTION), ("val", splits.ISIC_VAL_FRACTION)]


def test_isic_75_25_then_75_25_counts():
    groups = [f"ISIC_{i:07d}" for i in range(100)]
    subsets = splits.assign(groups, ISIC, "train", seed=0)
    counts = {name: list(subsets.values()).count(name) for name in ("train", "val", "test")}
    assert counts == {"test": 25, "val": 19, "train": 56}  # 75 * 0.25 = 18.75 -> 19


def test_lungs_10_to_1():
    groups = [f"CHNCXR_{i:04d}" for i in range(110)]
    subsets = splits.assign(groups, [("val", splits.LUNGS_VAL_FRACTION)], "train")
    assert list(subsets.values()).count("val") == 10


def test_same_seed_same_split_whatever_the_order():
    groups = [f"g{i}" for i in range(40)]
    first = splits.assign(groups, ISIC, "train", seed=3)
    assert splits.assign(list(reversed(groups)), ISIC, "train", seed=3) == first
    assert splits.assign(groups, ISIC, "train", seed=4) != first


def test_tiny_sets_still_hold_one_out_but_never_all():
    assert list(splits.assign(["a", "b"], [("val", 0.01)], "train").values()).count("val") == 1
    assert splits.assign(["a"], [("val", 0.5)], "train") == {"a": "train"}


def test_select_keeps_a_patient_in_one_subset():
    items = [f"CHNCXR_{p:04d}_{label}" for p in range(30) for label in (0, 1)]
    patient = lambda item: item[:11]  # noqa: E731
    fractions = [("val", splits.LUNGS_VAL_FRACTION)]
    train = splits.select(items, patient, "train", fractions)
    val = splits.select(items, patient, "val", fractions)
    assert {patient(i) for i in train}.isdisjoint({patient(i) for i in val})
    assert sorted(train + val) == sorted(items)
    assert splits.select(items, patient, "all", fractions) == items


def test_unknown_subset_and_bad_fraction():
    with pytest.raises(ValueError, match="unknown subset 'tset'"):
        splits.select(["a"], str, "tset", ISIC)
    with pytest.raises(ValueError, match="fraction"):
        splits.assign(["a"], [("val", 1.0)], "train")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6), max_size=60), st.integers(0, 10))
def test_every_group_gets_exactly_one_subset(groups, seed):
    subsets = splits.assign(groups, ISIC, "train", seed)
    assert set(subsets) == set(groups)
    assert set(subsets.values()) <= {"train", "val", "test"}
    if len(set(groups)) >= 2:
        assert "test" in subsets.values() and "train" in subsets.values()
