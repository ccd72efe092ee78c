"""samples/unet.py end to end on a tiny synthetic lung folder (the adapters' format)."""
import csv
import importlib.util
import json
import shutil

import cv2
import pytest

from datasets.synthetic import write_lungs
from tests.conftest import ROOT, options_without_help

spec = importlib.util.spec_from_file_location("unet_cli", ROOT / "samples" / "unet.py")
cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cli)


def test_parse_size_and_options():
    assert cli.parse_size("256") == (256, 256)
    assert cli.parse_size("256x320") == (256, 320)
    with pytest.raises(Exception, match="N or HxW"):
        cli.parse_size("256x")
    assert cli.parse_options(["layout=plain", "shrink_large=true", "mask_pattern={stem}@.png"],
                             seed=3) == {"seed": 3, "layout": "plain", "shrink_large": True,
                                         "mask_pattern": "{stem}@.png"}


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset=lungs", "--data={missing}"], "--data: folder not found"),
    (["train", "--dataset=lungs", "--data={data}", "--weights=imagnet"],
     "--weights='imagnet' is neither none, imagenet nor an existing file"),
    (["train", "--dataset=xray", "--data={data}"], "invalid choice: 'xray'"),
    (["evaluate", "--dataset=lungs", "--data={data}", "--run={missing}"],
     "run.json not found; is"),
    (["predict", "--run={run}", "--out={tmp}", "--checkpoint=last.weights.h5", "x.png"],
     "last.weights.h5 not found"),
    (["predict", "--run={run}", "--out={tmp}", "{missing}.png"], "image file not found"),
    (["predict", "--run={run}", "--out={tmp}", "--keep-components=0", "x.png"],
     "expected an integer >= 1, got '0'"),
])
def test_bad_input_exits_2_with_a_message(argv, message, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    (run / "best.weights.h5").write_bytes(b"")
    argv = [a.format(data=tmp_path / "data", missing=tmp_path / "missing", run=run,
                     tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_explains_every_option():
    assert options_without_help(cli.build_parser()) == []


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_train_resume_evaluate_predict(tmp_path, capsys):
    data, run = tmp_path / "lungs", tmp_path / "run"
    write_lungs(str(data), n=6, size=(70, 90), layout="shenzhen", seed=0)
    common = ["--dataset=lungs", f"--data={data}", "--batch-size=2"]
    train = ["train", *common, f"--run={run}", "--size=32x64", "--base-filters=4",
             "--lr=1e-3", "--lr-schedule=cosine", "--augment", "--encoder-batchnorm",
             "--dtype-policy=mixed_bfloat16", "--verbose=0"]
    cli.main([*train, "--epochs=1"])
    cli.main([*train, "--epochs=2"])
    info = json.loads((run / "run.json").read_text())
    assert info["input_shape"] == [32, 64, 1] and info["dataset"] == "lungs"
    assert info["lr_schedule"] == "cosine" and info["mask_resize"] == "area"
    assert info["encoder_batchnorm"] is True  # and evaluate/predict below rebuild it
    assert info["dtype_policy"] == "mixed_bfloat16"
    with open(run / "history.csv") as file:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(file)]
    # Epoch 0 of a 1-epoch curve starts at --lr; epoch 1 of the 2-epoch curve is halfway.
    assert rates == pytest.approx([1e-3, 5e-4])
    assert [s["epochs"] for s in info["train_sessions"]] == [[1], [2]]

    cli.main(["evaluate", *common, f"--run={run}", "--subset=all", "--overlays=2",
              "--keep-components=2"])
    report = json.loads((run / "eval_all" / "report.json").read_text())
    assert report["keep_components"] == 2
    assert report["summary"]["count"] == 6 == len(report["images"])
    assert all(r["size"] == [70, 90] for r in report["images"])
    assert 0.0 <= report["summary"]["mean_iou"] <= 1.0
    assert len(list((run / "eval_all" / "overlays").glob("*.png"))) == 2

    image = sorted((data / "CXR_png").glob("*.png"))[0]
    capsys.readouterr()
    cli.main(["predict", f"--run={run}", f"--out={tmp_path / 'pred'}", str(image)])
    mask = cv2.imread(capsys.readouterr().out.strip(), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (70, 90) and set(mask.ravel()) <= {0, 255}


def test_audit_lists_identical_images_and_the_iou_of_their_masks(tmp_path, capsys):
    data = tmp_path / "lungs"
    write_lungs(str(data), n=4, size=(40, 40), layout="shenzhen", seed=0)
    # CHNCXR_0009_0 is CHNCXR_0001_0's file again, its mask traced one column wider.
    shutil.copy(data / "CXR_png" / "CHNCXR_0001_0.png", data / "CXR_png" / "CHNCXR_0009_0.png")
    mask = cv2.imread(str(data / "masks" / "CHNCXR_0001_0_mask.png"), cv2.IMREAD_GRAYSCALE)
    wider = mask.copy()
    wider[:, 1:] |= mask[:, :-1]
    cv2.imwrite(str(data / "masks" / "CHNCXR_0009_0_mask.png"), wider)
    a, b = mask >= 128, wider >= 128
    capsys.readouterr()
    cli.main(["audit", "--dataset=lungs", f"--data={data}"])
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 5
    (copies,) = report["identical_images"]
    assert copies["ids"] == ["CHNCXR_0001_0", "CHNCXR_0009_0"]
    assert copies["mask_iou"] == pytest.approx((a & b).sum() / (a | b).sum())
    assert 0.5 < copies["mask_iou"] < 1.0
    assert copies["mask_dice"] == pytest.approx(2 * (a & b).sum() / (a.sum() + b.sum()))
