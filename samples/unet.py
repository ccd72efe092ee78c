"""VGG16 U-Net on binary masks: train, evaluate, predict, fetch ImageNet weights.

Run from the repository root (datasets/ is used from there, not installed):

    python samples/unet.py fetch-weights
    python samples/unet.py train --dataset=lungs --data=DIR [--run=logs/unet/lungs1]
        [--size=512] [--weights=none|imagenet|PATH] [--epochs=30] [--augment]
    python samples/unet.py evaluate --run=RUN --dataset=lungs --data=DIR [--subset=val]
    python samples/unet.py predict --run=RUN --out=DIR IMAGE [IMAGE ...]
    python samples/unet.py audit --dataset=lungs --data=DIR

Adapter options go through --option KEY=VALUE (repeatable), e.g. the OpenIST lungs:
    --option layout=plain --option "mask_pattern={stem}@.png"
Training resumes when --run names a folder that already holds a run (state.json).
Evaluation scores masks at each image's ORIGINAL resolution and writes report.json
(per-image IoU, Dice, ISIC Jaccard; means) and overlay PNGs.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mrcnn.dtype_policy import NAMED_POLICIES  # noqa: E402

DEFAULT_CHANNELS = {"lungs": 1, "siim": 1, "isic": 3}


def parse_size(text: str) -> tuple[int, int]:
    """"512" -> (512, 512); "256x320" -> (256, 320) as (height, width)."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected N or HxW (positive integers), got {text!r}")
    h, w = (int(parts[0]),) * 2 if len(parts) == 1 else map(int, parts)
    return h, w


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def parse_options(pairs: list[str], seed: int) -> dict:
    """["layout=plain", "shrink_large=true"] -> adapter keyword arguments."""
    options = {"seed": seed}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def default_augmentation(dataset: str):
    """Mask-safe, size-keeping albumentations pipeline: small affine moves + contrast
    for X-rays; flips and any rotation for dermoscopy (a lesion has no up or left;
    RandomRotate90 would swap the sides of a non-square input)."""
    import albumentations as A
    import cv2

    # Bilinear mask warping keeps soft (area) targets soft; binary ones are
    # thresholded at 0.5 by the metrics anyway.
    smooth = dict(mask_interpolation=cv2.INTER_LINEAR)
    if dataset == "isic":
        return A.Compose([A.HorizontalFlip(), A.VerticalFlip(),
                          A.Affine(rotate=(-180, 180), scale=(0.9, 1.1), p=0.7, **smooth),
                          A.RandomBrightnessContrast(0.1, 0.1),
                          A.HueSaturationValue(5, 10, 5)])
    return A.Compose([A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05),
                               rotate=(-7, 7), p=0.7, **smooth),
                      A.RandomBrightnessContrast(0.15, 0.15)])


def load_samples(args, subset: str):
    from datasets import binary_samples

    samples = binary_samples(args.dataset, args.data, subset,
                             **parse_options(args.option, args.seed))
    if not samples:
        raise SystemExit(f"no {subset} samples for --dataset={args.dataset} in {args.data}")
    return samples


def cmd_fetch_weights(args) -> None:
    from unet.weights import fetch_imagenet_weights

    print(fetch_imagenet_weights())


def cmd_train(args) -> None:
    import keras

    from unet.data import BinaryMaskSequence
    from unet.model import UNet
    from mrcnn.files import atomic_output
    from unet.training import RUN_FILE, cosine_schedule, fit

    keras.utils.set_random_seed(args.seed)
    run_dir = Path(args.run or Path(args.logs) / (
        f"{args.dataset}{datetime.datetime.now():%Y%m%dT%H%M}"))
    train, val = load_samples(args, "train"), load_samples(args, args.val_subset)
    channels = args.channels or DEFAULT_CHANNELS[args.dataset]
    weights = None if args.weights == "none" else args.weights
    model = UNet(lr=args.lr, encoder_weights=weights, freeze_encoder=args.freeze_encoder,
                 base_filters=args.base_filters, dropout=args.dropout,
                 encoder_batchnorm=args.encoder_batchnorm,
                 dtype_policy=args.dtype_policy).get_model((*args.size, channels))
    common = dict(input_size=args.size, batch_size=args.batch_size, channels=channels,
                  mask_resize=args.mask_resize, workers=args.workers)
    train_seq = BinaryMaskSequence(
        train, augmentation=default_augmentation(args.dataset) if args.augment else None,
        shuffle=True, seed=args.seed, **common)
    val_seq = BinaryMaskSequence(val, shuffle=False, **common)
    print(f"run {run_dir}: {len(train)} train / {len(val)} {args.val_subset} images, "
          f"input {(*args.size, channels)}, {model.count_params():,} parameters")
    start = time.perf_counter()
    callbacks = [cosine_schedule(args.lr, args.epochs)] if args.lr_schedule == "cosine" else []
    history = fit(model, train_seq, val_seq, run_dir, args.epochs, verbose=args.verbose,
                  callbacks=callbacks,
                  run_info={"dataset": args.dataset, "data": str(args.data),
                            "options": parse_options(args.option, args.seed),
                            "weights": args.weights, "lr": args.lr,
                            "lr_schedule": args.lr_schedule,
                            "batch_size": args.batch_size, "augment": args.augment,
                            "mask_resize": args.mask_resize})
    seconds = time.perf_counter() - start
    info_path = run_dir / RUN_FILE
    info = json.loads(info_path.read_text())
    info.setdefault("train_sessions", []).append(
        {"command": " ".join(sys.argv), "seconds": round(seconds, 1),
         "epochs": [e + 1 for e in history.epoch], "backend": keras.backend.backend()})
    with atomic_output(info_path) as temporary:
        temporary.write_text(json.dumps(info, indent=2))
    print(json.dumps({"run": str(run_dir), "train_seconds": round(seconds, 1),
                      "best_val_mean_iou": max(history.history.get("val_mean_iou", [0]))}))


def cmd_evaluate(args) -> None:
    from unet import evaluation
    from unet.inference import overlay, predict_masks, write_png
    from unet.training import load_run

    run_dir = Path(args.run)
    model = load_run(run_dir, args.checkpoint)
    samples = load_samples(args, args.subset)
    out_dir = Path(args.out or run_dir / f"eval_{args.subset}")
    rows = []
    start = time.perf_counter()
    for i in range(0, len(samples), args.batch_size):
        chunk = samples[i:i + args.batch_size]
        images = [s.load_image() for s in chunk]
        for sample, image, pred in zip(chunk, images, predict_masks(
                model, images, args.threshold, args.batch_size, args.keep_components)):
            gt = sample.load_mask()
            rows.append({"id": sample.id, "size": list(gt.shape),
                         **evaluation.score(gt, pred)})
            if len(rows) <= args.overlays:
                write_png(out_dir / "overlays" / f"{sample.id}.png", overlay(image, pred, gt))
    report = evaluation.write_report(
        out_dir / "report.json", rows, run=str(run_dir), checkpoint=args.checkpoint,
        dataset=args.dataset, subset=args.subset, threshold=args.threshold,
        keep_components=args.keep_components,
        resolution="original", seconds=round(time.perf_counter() - start, 1),
        command=" ".join(sys.argv))
    print(json.dumps(report["summary"]))


def cmd_predict(args) -> None:
    from mrcnn.dataset import read_image
    from unet.inference import overlay, predict_masks, write_png
    from unet.training import load_run

    model = load_run(args.run, args.checkpoint)
    out_dir = Path(args.out)
    for path in args.images:
        image = read_image(path)
        (mask,) = predict_masks(model, [image], args.threshold,
                                keep_components=args.keep_components)
        stem = Path(path).stem
        write_png(out_dir / f"{stem}_mask.png", mask)
        write_png(out_dir / f"{stem}_overlay.png", overlay(image, mask))
        print(out_dir / f"{stem}_mask.png")


def cmd_audit(args) -> None:
    """Byte-identical images under different names, and how far apart their masks are
    (the lowest IoU and Dice over the pairs of each group)."""
    from itertools import combinations

    from datasets.splits import identical_files
    from unet import evaluation

    samples = load_samples(args, "all")
    groups = []
    for group in identical_files([s.path for s in samples]):
        masks = [samples[i].load_mask() for i in group]
        scores = [evaluation.score(masks[a], masks[b])
                  for a, b in combinations(range(len(group)), 2)]
        groups.append({"ids": [samples[i].id for i in group],
                       "mask_iou": min(s["iou"] for s in scores),
                       "mask_dice": min(s["dice"] for s in scores)})
    print(json.dumps({"dataset": args.dataset, "data": str(args.data),
                      "images": len(samples), "identical_images": groups}, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="VGG16 U-Net on binary masks (lungs, ISIC lesions, SIIM pneumothorax).",
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("fetch-weights", help="download VGG16 ImageNet weights into the keras "
                   "cache (needs the network; train --weights=imagenet reads them)"
                   ).set_defaults(func=cmd_fetch_weights)

    def data_args(p):
        p.add_argument("--dataset", required=True, choices=sorted(DEFAULT_CHANNELS),
                       help="which adapter reads --data")
        p.add_argument("--data", required=True, metavar="DIR",
                       help="the dataset folder, in the adapter's on-disk layout")
        p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="adapter keyword argument, VALUE parsed as JSON when it can be "
                       "(layout=plain, mask_pattern={stem}@.png, ...); repeatable")
        p.add_argument("--seed", type=int, default=0,
                       help="seed of the train/val split, the shuffling and augmentation "
                       "(default 0)")
        p.add_argument("--batch-size", type=int, default=4, help="images per batch (default 4)")

    def trained_model_args(p):
        p.add_argument("--run", required=True, metavar="DIR", help="a train run folder")
        p.add_argument("--checkpoint", default="best.weights.h5",
                       help="weights file in RUN: best.weights.h5 (default) or "
                       "last.weights.h5")
        p.add_argument("--threshold", type=float, default=0.5,
                       help="probability above which a pixel is foreground (default 0.5)")
        p.add_argument("--keep-components", type=positive_int, metavar="N",
                       help="keep only the N largest connected regions of each mask (2 "
                       "for lungs, 1 for a lesion; default: keep all)")

    train = sub.add_parser("train", help="train, keeping the best val IoU and the last "
                           "epoch; resumes a run folder")
    data_args(train)
    train.add_argument("--run", metavar="DIR", help="run folder; resumed when it holds a "
                       "run (default LOGS/DATASETyyyymmddTHHMM)")
    train.add_argument("--logs", default="logs/unet", metavar="DIR",
                       help="parent of new run folders (default logs/unet)")
    train.add_argument("--size", type=parse_size, default=(512, 512), metavar="N|HxW",
                       help="model input size, each side divisible by 32 (default 512); "
                       "images are resized to it and predictions back to the original size")
    train.add_argument("--channels", type=int, choices=(1, 3),
                       help="model input channels (default 1 for X-rays, 3 for ISIC)")
    train.add_argument("--epochs", type=int, default=30,
                       help="epoch to train up to, counting a resumed run's (default 30)")
    train.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    train.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                       help="constant --lr (the seed's recipe, default) or cosine: from --lr "
                       "at epoch 0 down towards 0 at --epochs")
    train.add_argument("--base-filters", type=int, default=64,
                       help="width of block1, the other blocks scale with it; 64 is VGG16 "
                       "(needed for --weights=imagenet); 16 has 1/16 of its convolution work")
    train.add_argument("--weights", default="none", type=check_weights_arg,
                       help="encoder weights: none (random), imagenet (after fetch-weights) "
                       "or a VGG16 .h5 file (default none)")
    train.add_argument("--encoder-batchnorm", action="store_true",
                       help="BatchNorm after each encoder convolution (vgg16_bn): trains "
                       "faster from scratch")
    train.add_argument("--dtype-policy", default="float32", choices=NAMED_POLICIES,
                       help="Keras dtype policy: mixed_bfloat16 trains 1.6-1.9x faster on a "
                       "CPU with AVX512_BF16 (recorded in run.json; evaluate and predict "
                       "rebuild with it)")
    train.add_argument("--freeze-encoder", action="store_true",
                       help="train only the decoder")
    train.add_argument("--dropout", type=float, default=0.0,
                       help="dropout rate in each decoder block (default 0: none)")
    train.add_argument("--augment", action="store_true",
                       help="mask-safe albumentations: small affine moves and contrast for "
                       "X-rays, flips and rotations for ISIC")
    train.add_argument("--mask-resize", choices=("area", "nearest"), default="area",
                       help="targets at the input size: area = the fraction of each pixel "
                       "inside the mask (soft borders, default), nearest = binary")
    train.add_argument("--val-subset", default="val",
                       help="subset validated on and choosing best.weights.h5 (default val)")
    train.add_argument("--workers", type=int, default=1,
                       help="threads loading batches (default 1)")
    train.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2),
                       help="keras fit verbosity: 0 silent, 1 progress bar, 2 a line per "
                       "epoch (default 2)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="per-image IoU, Dice and ISIC Jaccard at "
                              "the original size, to report.json, with overlays")
    data_args(evaluate)
    trained_model_args(evaluate)
    evaluate.add_argument("--subset", default="val",
                          help="train, val, test (ISIC) or all (default val)")
    evaluate.add_argument("--out", metavar="DIR", help="output folder (default RUN/eval_SUBSET)")
    evaluate.add_argument("--overlays", type=int, default=8,
                          help="how many overlay PNGs to draw (default 8)")
    evaluate.set_defaults(func=cmd_evaluate)

    audit = sub.add_parser("audit", help="list byte-identical images under different "
                           "names (the seeded lungs and ISIC splits keep them in one subset) "
                           "and the IoU between their masks: how well the labels reproduce")
    data_args(audit)
    audit.set_defaults(func=cmd_audit)

    predict = sub.add_parser("predict", help="masks and overlays for image files, at "
                             "their original size")
    trained_model_args(predict)
    predict.add_argument("--out", required=True, metavar="DIR",
                         help="folder for NAME_mask.png and NAME_overlay.png")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    predict.set_defaults(func=cmd_predict)
    return parser


def check_weights_arg(value: str) -> str:
    """--weights: none, imagenet or an existing file."""
    if value in ("none", "imagenet") or Path(value).is_file():
        return value
    raise argparse.ArgumentTypeError(f"--weights={value!r} is neither none, imagenet nor "
                                     "an existing file")


def check_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Missing inputs are usage errors (exit 2, one line), before any model is built."""
    if getattr(args, "data", None) is not None and not Path(args.data).is_dir():
        parser.error(f"--data: folder not found: {args.data}")
    if args.command in ("evaluate", "predict"):
        for name in ("run.json", args.checkpoint):
            if not (Path(args.run) / name).is_file():
                parser.error(f"--run: {Path(args.run) / name} not found; is {args.run} a "
                             "folder written by train?")
    for path in getattr(args, "images", None) or []:
        if not Path(path).is_file():
            parser.error(f"image file not found: {path}")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_paths(parser, args)
    args.func(args)


if __name__ == "__main__":
    main()
