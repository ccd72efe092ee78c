"""samples/unet.py end to end on a tiny synthetic lung folder (the adapters' format)."""
import importlib.util
import json

import cv2
import pytest

from datasets.synthetic import write_lungs
from tests.conftest import ROOT

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


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_train_resume_evaluate_predict(tmp_path, capsys):
    data, run = tmp_path / "lungs", tmp_path / "run"
    write_lungs(str(data), n=6, size=(70, 90), layout="shenzhen", seed=0)
    common = ["--dataset=lungs", f"--data={data}", "--batch-size=2"]
    train = ["train", *common, f"--run={run}", "--size=32x64", "--base-filters=4",
             "--lr=1e-3", "--augment", "--verbose=0"]
    cli.main([*train, "--epochs=1"])
    cli.main([*train, "--epochs=2"])
    info = json.loads((run / "run.json").read_text())
    assert info["input_shape"] == [32, 64, 1] and info["dataset"] == "lungs"
    assert [s["epochs"] for s in info["train_sessions"]] == [[1], [2]]

    cli.main(["evaluate", *common, f"--run={run}", "--subset=all", "--overlays=2"])
    report = json.loads((run / "eval_all" / "report.json").read_text())
    assert report["summary"]["count"] == 6 == len(report["images"])
    assert all(r["size"] == [70, 90] for r in report["images"])
    assert 0.0 <= report["summary"]["mean_iou"] <= 1.0
    assert len(list((run / "eval_all" / "overlays").glob("*.png"))) == 2

    image = sorted((data / "CXR_png").glob("*.png"))[0]
    capsys.readouterr()
    cli.main(["predict", f"--run={run}", f"--out={tmp_path / 'pred'}", str(image)])
    mask = cv2.imread(capsys.readouterr().out.strip(), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (70, 90) and set(mask.ravel()) <= {0, 255}
