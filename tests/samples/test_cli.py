"""The Mask R-CNN sample commands (samples/_cli.py through lungs.py, isic.py,
pneumothorax.py) on tiny synthetic datasets in each true on-disk format."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import cv2
import pytest

from datasets import synthetic
from samples import _cli, isic, lungs, pneumothorax
from tests.conftest import ROOT, options_without_help

SAMPLES = {"lungs": lungs.SAMPLE, "isic": isic.SAMPLE, "pneumothorax": pneumothorax.SAMPLE}
# A model that trains in seconds: 64-pixel molded images (the smallest size the five
# stride-2 stages allow), the small backbone, few ROIs and narrow heads.
TINY = ["--image-size=64", "--backbone=small", "--config=POST_NMS_ROIS_TRAINING=64",
        "--config=TRAIN_ROIS_PER_IMAGE=16", "--config=POST_NMS_ROIS_INFERENCE=64",
        "--config=DETECTION_MAX_INSTANCES=8", "--config=TOP_DOWN_PYRAMID_SIZE=64",
        "--config=FPN_CLASSIF_FC_LAYERS_SIZE=128"]
# Compiling costs more than detecting a few images; keep every detection.
INFERENCE = ["--no-jit", "--min-confidence=0"]


def write_data(name: str, root) -> list:
    """A synthetic dataset for sample `name`; the records written."""
    if name == "lungs":
        return synthetic.write_lungs(str(root), n=6, size=(64, 80), seed=1)
    if name == "isic":
        return synthetic.write_isic(str(root), n=6, size=(72, 96), seed=1)
    return synthetic.write_siim(str(root), n=6, size=(64, 64), seed=1)


@pytest.fixture
def lungs_root(tmp_path):
    write_data("lungs", tmp_path / "lungs")
    return tmp_path / "lungs"


def test_parse_schedule():
    assert _cli.parse_schedule("heads:1:1e-3,all:3:1e-4") == (
        _cli.Phase("heads", 1, 1e-3), _cli.Phase("all", 3, 1e-4))
    assert _cli.parse_schedule("3+:30:0.0001") == (_cli.Phase("3+", 30, 1e-4),)
    for bad, message in (("heads:1", "LAYERS:EPOCH:LR"), ("heads:x:1e-3", "LAYERS:EPOCH:LR"),
                         ("heads:3:1e-3,all:3:1e-4", "must increase"),
                         ("heads:0:1e-3", "epochs >= 1")):
        with pytest.raises(Exception, match=message):
            _cli.parse_schedule(bad)


def test_config_overrides_and_defaults(lungs_root):
    args = _cli.parse_args(lungs.SAMPLE, [
        "evaluate", f"--dataset={lungs_root}", "--image-size=192", "--backbone=resnet101",
        "--config=DETECTION_MAX_INSTANCES=7", "--min-confidence=0.5",
        "--config=DTYPE_POLICY=mixed_bfloat16"])
    config = _cli.make_config(lungs.SAMPLE, args, inference=True)
    assert isinstance(config, lungs.LungsConfig)
    assert config.DTYPE_POLICY == "mixed_bfloat16"
    assert config.IMAGE_MAX_DIM == 192 and list(config.IMAGE_SHAPE) == [192, 192, 3]
    assert config.BACKBONE == "resnet101" and config.DETECTION_MAX_INSTANCES == 7
    assert config.DETECTION_MIN_CONFIDENCE == 0.5 and config.BATCH_SIZE == 1
    # The class attribute is untouched: overrides live in a subclass.
    assert lungs.LungsConfig.IMAGE_MAX_DIM == 128
    train = _cli.make_config(lungs.SAMPLE, _cli.parse_args(lungs.SAMPLE, [
        "train", f"--dataset={lungs_root}", "--weights=none", "--steps-per-epoch=3"]),
        inference=False)
    assert train.STEPS_PER_EPOCH == 3 and train.BATCH_SIZE == 2 and train.IMAGE_MAX_DIM == 128
    assert _cli.parse_args(lungs.SAMPLE, ["train", f"--dataset={lungs_root}",
                                          "--weights=none"]).schedule == lungs.SAMPLE.schedule


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--dataset={missing}"], "--dataset: folder not found"),
    (["train", "--dataset={data}", "--weights=cocoa"],
     "--weights='cocoa' is neither one of coco, imagenet, last, none"),
    (["train", "--dataset={data}"], "train needs --weights"),
    (["evaluate", "--dataset={data}", "--weights=coco"], "python weights/fetch_weights.py coco"),
    (["evaluate", "--dataset={data}", "--weights=last", "--logs={tmp}"], "--weights=last: "),
    (["evaluate", "--dataset={data}", "--config=NOT_AN_OPTION=1"],
     "unknown Config attribute"),
    (["evaluate", "--dataset={data}", "--config=DTYPE_POLICY=bfloat16"],
     "DTYPE_POLICY must be one of None, float32, mixed_bfloat16, mixed_float16"),
    (["train", "--dataset={data}", "--weights=none", "--schedule=heads:3:1e-3,all:2:1e-4"],
     "must increase"),
    (["detect", "--image={missing}.png"], "--image: file not found"),
    (["splash"], "needs --dataset=DIR or --image=PATH"),
    (["evaluate", "--dataset={data}", "--image-size=100"], "divisible by 64"),
])
def test_bad_input_exits_2_with_a_message(argv, message, lungs_root, tmp_path, monkeypatch,
                                          capsys):
    monkeypatch.setenv(_cli.COCO_ENV, str(tmp_path / "absent" / "mask_rcnn_coco.h5"))
    argv = [a.format(data=lungs_root, missing=tmp_path / "missing", tmp=tmp_path)
            for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(lungs.SAMPLE, argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_help_explains_every_option(name):
    assert options_without_help(_cli.build_parser(SAMPLES[name])) == []


def test_script_help_runs_from_anywhere(tmp_path):
    """The sample puts the repository root on sys.path itself, as matterport's did."""
    result = subprocess.run([sys.executable, str(ROOT / "samples" / "pneumothorax.py"),
                             "train", "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for option in ("--dataset", "--weights", "--logs", "--schedule", "--limit",
                   "heads:2:0.001,all:12:0.0001"):
        assert option in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_train_evaluate_detect_splash(name, tmp_path):
    sample, root, logs = SAMPLES[name], tmp_path / name, tmp_path / "logs"
    records = write_data(name, root)
    common = [f"--dataset={root}", f"--logs={logs}", *TINY]

    # One phase keeps the test to one compiled train step; the two-phase default
    # schedule runs in tests/samples/test_demo.py.
    trained = _cli.main(sample, ["train", *common, "--weights=none", "--steps-per-epoch=1",
                                 "--validation-steps=0", "--schedule=heads:1:0.001"])
    checkpoint = trained["last_checkpoint"]
    assert checkpoint.endswith(f"mask_rcnn_{name}_0001.h5")
    assert checkpoint.startswith(str(logs / name)) and trained["weights"] == "none"

    out = tmp_path / "eval"
    summary = _cli.main(sample, ["evaluate", *common, "--weights=last", *INFERENCE,
                                 "--subset=all", f"--out={out}", "--overlays=2"])
    report = json.loads((out / "report.json").read_text())
    ids = sorted(r.id for r in records)
    assert sorted(row["id"] for row in report["images"]) == ids
    assert summary["count"] == len(ids) == report["summary"]["count"]
    for row in report["images"]:
        assert 0.0 <= row["iou"] <= 1.0 and 0.0 <= row["max_iou"] <= 1.0
        assert row["detections"] <= 8
    assert set(report["coco"]) == {"AP", "AP50", "AP75"}
    assert report["weights"] == checkpoint and report["sample"] == name
    results = json.loads((out / "coco_results.json").read_text())
    assert {r["image_id"] for r in results} <= set(ids)
    assert len(results) == sum(row["detections"] for row in report["images"])
    assert {p.name for p in out.glob("*.png")} == {"score_boxplot.png", "pr_curve.png"}
    assert len(list((out / "overlays").glob("*.png"))) == 2
    if sample.siim_submission:
        with open(out / "submission.csv") as file:
            rows = list(csv.reader(file))
        assert rows[0] == ["ImageId", "EncodedPixels"]
        assert {r[0] for r in rows[1:]} == set(ids)
    else:
        assert not (out / "submission.csv").exists()

    image = records[0].path
    detect_out = _cli.main(sample, ["detect", *common[1:], f"--weights={checkpoint}",
                                    *INFERENCE, f"--image={image}",
                                    f"--out={tmp_path / 'detect'}"])
    stem = records[0].id  # every adapter's image id is its file's stem
    assert (detect_out / f"{stem}.png").is_file()
    (detected,) = json.loads((detect_out / "detections.json").read_text())
    assert detected["image"] == stem and len(detected["scores"]) == len(detected["rois"])

    splash_out = _cli.main(sample, ["splash", *common, "--weights=last", *INFERENCE,
                                    "--subset=all", "--limit=2",
                                    f"--out={tmp_path / 'splash'}"])
    pictures = sorted(splash_out.glob("*_splash.png"))
    assert len(pictures) == 2 and {p.name[:-len("_splash.png")] for p in pictures} <= set(ids)
    height, width = records[0].image.shape[:2]
    assert cv2.imread(str(pictures[0])).shape == (height, width, 3)
