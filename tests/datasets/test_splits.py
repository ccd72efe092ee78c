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


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_identical_files_groups_copies_only(tmp_path):
    paths = [_write(tmp_path / "a.png", b"x" * 10), _write(tmp_path / "b.png", b"x" * 10),
             _write(tmp_path / "c.png", b"y" * 10),  # a's size, other bytes
             _write(tmp_path / "d.png", b"zz"), _write(tmp_path / "e.png", b"zz"),
             _write(tmp_path / "f.png", b"alone")]
    assert splits.identical_files(paths) == [[0, 1], [3, 4]]
    assert splits.identical_files(paths[2:4]) == []


def test_select_keeps_byte_identical_copies_in_one_subset(tmp_path, caplog):
    # 30 distinct images, then image 0 again under another name (and another patient).
    items = [(f"p{i:02d}", _write(tmp_path / f"{i:02d}.png", bytes([i]) * (i + 1)))
             for i in range(30)]
    items.append(("copy", _write(tmp_path / "copy.png", bytes([0]))))
    fractions = [("val", 0.2)]

    def val(seed, path_of=None):
        return {g for g, _ in splits.select(items, lambda it: it[0], "val", fractions,
                                            seed=seed, path_of=path_of)}

    # By name alone the copy and its original are split apart for some seeds...
    assert any(("p00" in val(seed)) != ("copy" in val(seed)) for seed in range(40))
    caplog.set_level("WARNING", logger="datasets.splits")
    for seed in range(40):
        held_out = val(seed, path_of=lambda it: it[1])
        # ... never by content.
        assert ("p00" in held_out) == ("copy" in held_out)
        assert len(held_out - {"copy"}) == 6  # 30 groups now, as before the copy
        assert splits.select(items, lambda it: it[0], "all", fractions, seed=seed,
                             path_of=lambda it: it[1]) == items
    assert f"{tmp_path / '00.png'}, {tmp_path / 'copy.png'}" in caplog.text


def test_copies_merge_whole_patient_groups(tmp_path):
    # a (patient P1) and b (patient P2) are one image; c is P2's other X-ray: all three
    # must share a subset.
    items = [("P1", _write(tmp_path / "a.png", b"same")), ("P2", _write(tmp_path / "b.png", b"same")),
             ("P2", _write(tmp_path / "c.png", b"other"))]
    items += [(f"Q{i}", _write(tmp_path / f"q{i}.png", bytes([i]) * 9)) for i in range(20)]
    assert splits.merge_identical([g for g, _ in items], [p for _, p in items])[:3] == \
        ["P1", "P1", "P1"]
    for seed in range(20):
        val = splits.select(items, lambda it: it[0], "val", [("val", 0.3)], seed=seed,
                            path_of=lambda it: it[1])
        assert sum(it in val for it in items[:3]) in (0, 3)
