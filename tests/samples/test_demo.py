"""`make demo` (samples/demo.py) in its quick mode: every stage runs and writes its files."""
from __future__ import annotations

import json

import cv2
import pytest

from samples import demo


@pytest.mark.slow
def test_quick_demo_writes_metrics_plots_and_overlays(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--quick", f"--out={out}"]) == out
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == str(out)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["images"] == demo.QUICK["images"]
    for model in ("mask_rcnn", "unet"):
        assert metrics[model]["count"] >= 1
        assert 0.0 <= metrics[model]["mean_iou"] <= metrics[model]["mean_dice"] <= 1.0
        assert "random" in metrics[model]["weights"]
    assert set(metrics["mask_rcnn"]["coco"]) == {"AP", "AP50", "AP75"}
    # The two phases (heads to epoch 1, all to epoch 2) each left their checkpoint.
    log_dir, = (out / "mrcnn_logs").iterdir()
    assert sorted(p.name for p in log_dir.glob("*.h5")) == [
        "mask_rcnn_lungs_0001.h5", "mask_rcnn_lungs_0002.h5"]
    assert metrics["mask_rcnn"]["checkpoint"] == str(log_dir / "mask_rcnn_lungs_0002.h5")

    size = demo.QUICK["size"]
    pictures = {
        "mask_rcnn/score_boxplot.png": None, "mask_rcnn/pr_curve.png": None,
        "unet/score_boxplot.png": None,
        **{str(p.relative_to(out)): (size, size)
           for p in (out / "mask_rcnn" / "splash").glob("*.png")},
        **{str(p.relative_to(out)): (size, size) for p in (out / "unet" / "overlays").glob("*.png")},
    }
    assert len(pictures) >= 5
    assert list((out / "mask_rcnn" / "overlays").glob("*.png"))
    for name, shape in pictures.items():
        image = cv2.imread(str(out / name))
        assert image is not None and image.size, name
        if shape:  # splash and U-Net overlays are drawn at the image's own size
            assert image.shape[:2] == shape, name


def test_demo_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        demo.main([f"--out={tmp_path}"])
    assert exit_info.value.code == 2 and (tmp_path / "notes.txt").exists()
    assert "holds no earlier demo" in capsys.readouterr().err
