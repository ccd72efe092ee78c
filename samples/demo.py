"""`make demo`: the whole pipeline on a synthetic lungs dataset, offline, on a CPU.

    python samples/demo.py [--out demo_output] [--quick]

1. Writes a small synthetic chest X-ray dataset in the Shenzhen on-disk layout.
2. Mask R-CNN (samples/lungs.py train): two phases, the heads then all layers, from
   RANDOM weights with the small CPU backbone (no download, so no COCO weights; a
   ResNet from scratch would learn nothing in minutes).
3. A VGG16-layout U-Net (samples/unet.py train), narrow, from random weights.
4. Evaluates both on the validation split (report.json, plots), draws overlays, and
   writes OUT/metrics.json with both summaries. The last line printed is OUT.

The full run took 6 minutes on 2 shared CPU cores; --quick (the test) about 2.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from datasets.synthetic import write_lungs  # noqa: E402
from samples import _cli, lungs  # noqa: E402
from samples import unet as unet_cli  # noqa: E402

# Sizes of each mode. The learning rates are higher than the lungs sample's (1e-3, then
# 1e-4), which assume COCO weights: from random weights they would barely move.
FULL = dict(images=48, size=128, mrcnn_steps=20, schedule="heads:2:0.01,all:6:0.005",
            unet_epochs=12, unet_filters=16)
QUICK = dict(images=6, size=64, mrcnn_steps=1, schedule="heads:1:0.01,all:2:0.005",
             unet_epochs=1, unet_filters=4)
MARKER = ".medseg_demo"  # marks a folder this script may replace
# The mask head (four 256-channel convolutions per ROI) dominates a CPU step: 16 ROIs
# per image (about 5 positives at ROI_POSITIVE_RATIO 0.33) are enough for two lungs.
MRCNN_CONFIG = ["--backbone=small", "--config=TOP_DOWN_PYRAMID_SIZE=64",
                "--config=FPN_CLASSIF_FC_LAYERS_SIZE=256", "--config=TRAIN_ROIS_PER_IMAGE=16",
                "--config=POST_NMS_ROIS_TRAINING=256", "--config=POST_NMS_ROIS_INFERENCE=128"]


def run_mask_rcnn(data: Path, out: Path, mode: dict, quick: bool) -> dict:
    """Train with the two-phase schedule, then evaluate and draw; the evaluation summary."""
    logs = out / "mrcnn_logs"
    common = [f"--dataset={data}", f"--logs={logs}", f"--image-size={mode['size']}",
              *MRCNN_CONFIG]
    trained = _cli.main(lungs.SAMPLE, [
        "train", *common, "--weights=none", f"--schedule={mode['schedule']}",
        f"--steps-per-epoch={mode['mrcnn_steps']}",
        f"--validation-steps={0 if quick else 2}"])
    inference = [*common, f"--weights={trained['last_checkpoint']}", "--subset=val"]
    if quick:
        inference += ["--no-jit", "--min-confidence=0"]
    summary = _cli.main(lungs.SAMPLE, ["evaluate", *inference, f"--out={out / 'mask_rcnn'}",
                                       "--overlays=8"])
    _cli.main(lungs.SAMPLE, ["splash", *inference, f"--out={out / 'mask_rcnn' / 'splash'}",
                             "--limit=4"])
    return {**summary, "checkpoint": trained["last_checkpoint"],
            "train_seconds": trained["train_seconds"], "schedule": mode["schedule"],
            "weights": "none (random initialisation, small backbone)"}


def run_unet(data: Path, out: Path, mode: dict) -> dict:
    """Train, evaluate at the original size, plot; the evaluation summary."""
    from mrcnn import evaluation

    run = out / "unet_run"
    common = ["--dataset=lungs", f"--data={data}", "--batch-size=4"]
    start = time.perf_counter()
    unet_cli.main(["train", *common, f"--run={run}", f"--size={mode['size']}",
                   f"--base-filters={mode['unet_filters']}", f"--epochs={mode['unet_epochs']}",
                   "--lr=1e-3", "--augment", "--verbose=2"])
    seconds = round(time.perf_counter() - start, 1)
    unet_cli.main(["evaluate", *common, f"--run={run}", f"--out={out / 'unet'}",
                   "--overlays=8"])
    report = json.loads((out / "unet" / "report.json").read_text())
    plots = evaluation.save_plots(report, out / "unet")
    return {**report["summary"], "train_seconds": seconds, "epochs": mode["unet_epochs"],
            "weights": "none (random initialisation)",
            "plots": sorted(str(p) for p in plots.values())}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "demo_output",
                        help="output folder, replaced if it holds an earlier demo "
                             "(default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and one step per epoch: checks the pipeline only")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    out = args.out.resolve()
    if out.exists():
        if not (out / MARKER).exists() and any(out.iterdir()):
            parser.error(f"--out {out} is not empty and holds no earlier demo; "
                         f"choose another folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # Written first, so that an interrupted demo's folder is still replaced next time.
    (out / MARKER).write_text("written by samples/demo.py\n")
    start = time.perf_counter()
    data = out / "data"
    write_lungs(str(data), n=mode["images"], size=(mode["size"],) * 2, seed=0)
    metrics = {"dataset": {"path": str(data), "images": mode["images"],
                           "size": mode["size"], "kind": "synthetic lungs (Shenzhen layout)"},
               "mask_rcnn": run_mask_rcnn(data, out, mode, args.quick),
               "unet": run_unet(data, out, mode)}
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    metrics["note"] = ("Both models start from random weights (offline: nothing is "
                       "downloaded) and train for minutes on synthetic data; the figures "
                       "check the pipeline, they are not results on real X-rays.")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({"mask_rcnn": {k: metrics["mask_rcnn"][k]
                                    for k in ("mean_iou", "mean_dice", "mean_ap50")},
                      "unet": {k: metrics["unet"][k] for k in ("mean_iou", "mean_dice")},
                      "seconds": metrics["seconds"]}))
    print(f"demo outputs (overlays, plots, metrics.json) are in:\n{out}")
    return out


if __name__ == "__main__":
    main()
