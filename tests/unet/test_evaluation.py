import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from unet import evaluation

EMPTY = np.zeros((4, 4), bool)
LEFT = np.zeros((4, 4), bool); LEFT[:, :2] = True
TOP = np.zeros((4, 4), bool); TOP[:2, :] = True


def test_hand_computed_cases():
    assert evaluation.iou(EMPTY, EMPTY) == 1.0
    assert evaluation.dice(EMPTY, EMPTY) == 1.0
    assert evaluation.iou(EMPTY, LEFT) == 0.0
    assert evaluation.dice(LEFT, EMPTY) == 0.0
    assert evaluation.iou(LEFT, TOP) == pytest.approx(1 / 3)
    assert evaluation.dice(LEFT, TOP) == pytest.approx(0.5)
    assert evaluation.isic_jaccard(LEFT, TOP) == 0.0
    assert evaluation.isic_jaccard(LEFT, LEFT) == 1.0
    assert evaluation.score(LEFT, TOP) == pytest.approx(
        {"iou": 1 / 3, "dice": 0.5, "isic_jaccard": 0.0})


def test_nonzero_integers_count_as_foreground():
    assert evaluation.iou(LEFT.astype(np.uint8) * 255, LEFT) == 1.0


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(4, 4\) vs \(4, 5\)"):
        evaluation.iou(LEFT, np.zeros((4, 5), bool))


def test_report_json(tmp_path):
    rows = [{"id": "a", **evaluation.score(LEFT, LEFT)},
            {"id": "b", **evaluation.score(LEFT, TOP)}]
    report = evaluation.write_report(tmp_path / "sub" / "r.json", rows, command="x")
    on_disk = json.loads((tmp_path / "sub" / "r.json").read_text())
    assert on_disk == report
    assert on_disk["summary"]["mean_iou"] == pytest.approx((1 + 1 / 3) / 2)
    assert on_disk["summary"]["mean_dice"] == pytest.approx(0.75)
    assert on_disk["summary"]["count"] == 2
    assert [r["id"] for r in on_disk["images"]] == ["a", "b"]
    assert on_disk["command"] == "x"
    with pytest.raises(ValueError, match="no per-image"):
        evaluation.summarize([])


def test_importable_without_keras():
    code = ("import sys, unet.evaluation; "
            "sys.exit(int(any(m.split('.')[0] in ('keras', 'tensorflow', 'jax') "
            "for m in sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
