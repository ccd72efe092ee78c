"""The command line shared by the Mask R-CNN samples (lungs.py, isic.py, pneumothorax.py).

Each sample file describes its dataset with a `Sample` (Config subclass, adapter, default
two-phase schedule) and calls `main(sample)`. Commands, as matterport's samples:

    train     fine-tune with the sample's schedule (heads first, then deeper layers)
    evaluate  detect on a subset; report.json (IoU, Dice, ISIC Jaccard, mAP@0.5, COCO AP),
              plots, COCO results JSON (+ SIIM submission CSV), overlay PNGs
    detect    overlay PNGs (boxes, masks, scores) + detections.json for images
    splash    image-sized PNGs: the image with its detected masks tinted

Bad command-line input (a missing folder or file, an unknown weights name, weights that
have not been fetched) ends with argparse's usage message and exit status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mrcnn.config import Config  # noqa: E402
from mrcnn.dataset import Dataset, read_image  # noqa: E402

WEIGHT_NAMES = ("coco", "imagenet", "last", "none")
# The class-specific layers of mask_rcnn_coco.h5 (81 classes): re-initialised when
# fine-tuning on another number of classes.
COCO_HEADS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
COCO_ENV = "MRCNN_COCO_WEIGHTS"


@dataclasses.dataclass(frozen=True)
class Phase:
    """One call of MaskRCNN.train(): `layers` trained up to epoch `epochs` (cumulative)."""

    layers: str
    epochs: int
    learning_rate: float

    def __str__(self) -> str:
        return f"{self.layers}:{self.epochs}:{self.learning_rate:g}"


@dataclasses.dataclass(frozen=True)
class Sample:
    """What differs between the Mask R-CNN samples.

    Attributes:
        name: the dataset's name ("lungs"), used in output folder names.
        description: the first line of --help.
        config: the training Config subclass (NAME, NUM_CLASSES, image size, ...).
        dataset: the Dataset subclass.
        load: (dataset, root, subset, **options) -> None, e.g. LungsDataset.load_lungs.
        schedule: the default training phases.
        augmentation: () -> an albumentations pipeline, or None.
        class_names: "BG" and the adapter's class names, for --image files.
        read_image: path -> [H, W, 3] uint8, for --image files.
        siim_submission: evaluate also writes a SIIM-ACR submission CSV.
    """

    name: str
    description: str
    config: type[Config]
    dataset: type[Dataset]
    load: Callable[..., None]
    schedule: tuple[Phase, ...]
    class_names: tuple[str, ...]
    augmentation: Callable[[], object] | None = None
    read_image: Callable[[str], np.ndarray] = read_image
    siim_submission: bool = False


def parse_schedule(text: str) -> tuple[Phase, ...]:
    """"heads:1:1e-3,all:3:1e-4" -> phases; epochs are cumulative and must increase."""
    phases = []
    for part in text.split(","):
        fields = part.strip().split(":")
        try:
            layers, epochs, lr = fields
            phase = Phase(layers, int(epochs), float(lr))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--schedule expects LAYERS:EPOCH:LR[,LAYERS:EPOCH:LR...], got {part!r}"
            ) from None
        if phases and phase.epochs <= phases[-1].epochs:
            raise argparse.ArgumentTypeError(
                f"--schedule epochs are cumulative and must increase; got {text!r}")
        if phase.epochs < 1 or phase.learning_rate <= 0:
            raise argparse.ArgumentTypeError(
                f"--schedule needs epochs >= 1 and a positive learning rate; got {part!r}")
        phases.append(phase)
    return tuple(phases)


def parse_assignments(pairs: Sequence[str], flag: str) -> dict:
    """["IMAGES_PER_GPU=1", "layout=plain"] -> {"IMAGES_PER_GPU": 1, "layout": "plain"};
    values are read as JSON when they parse, else kept as strings."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{flag} expects KEY=VALUE, got {pair!r}")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value
    return values


def make_config(sample: Sample, args, inference: bool) -> Config:
    """The sample's Config with the command line's overrides applied.

    Inference uses one image per batch (detect() takes BATCH_SIZE images), as
    matterport's InferenceConfig subclasses do.
    """
    overrides = parse_assignments(args.config, "--config")
    unknown = sorted(k for k in overrides if not hasattr(Config, k))
    if unknown:
        raise argparse.ArgumentTypeError(f"--config: unknown Config attribute(s) {unknown}")
    if args.backbone == "small":
        from samples.small_backbone import small_backbone, small_backbone_shapes

        overrides.update(BACKBONE=staticmethod(small_backbone),
                         COMPUTE_BACKBONE_SHAPE=staticmethod(small_backbone_shapes))
    elif args.backbone:
        overrides["BACKBONE"] = args.backbone
    if args.image_size:
        overrides.update(IMAGE_MAX_DIM=args.image_size,
                         IMAGE_MIN_DIM=min(sample.config.IMAGE_MIN_DIM, args.image_size))
    for flag, attr in (("steps_per_epoch", "STEPS_PER_EPOCH"),
                       ("validation_steps", "VALIDATION_STEPS")):
        if getattr(args, flag, None) is not None:
            overrides[attr] = getattr(args, flag)
    if inference:
        overrides.update(GPU_COUNT=1, IMAGES_PER_GPU=1)
        if getattr(args, "min_confidence", None) is not None:
            overrides["DETECTION_MIN_CONFIDENCE"] = args.min_confidence
    cls = type(sample.config.__name__, (sample.config,), overrides)
    try:
        return cls()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def load_dataset(sample: Sample, root: str, subset: str, options: dict,
                 limit: int = 0) -> Dataset:
    """A prepared dataset of one subset, keeping the first `limit` images (0: all)."""
    dataset = sample.dataset()
    sample.load(dataset, root, subset, **options)
    if limit:
        dataset.image_info = dataset.image_info[:limit]
    dataset.prepare()
    if not dataset.num_images:
        raise argparse.ArgumentTypeError(f"no {subset!r} images in {root}")
    return dataset


# --------------------------------------------------------------------------- weights
def _imagenet_candidates() -> list[Path]:
    from mrcnn.weights import IMAGENET_WEIGHTS
    from unet.weights import keras_cache_dir

    # weights/ is where fetch_weights.py puts it; the Keras cache is where
    # MaskRCNN.get_imagenet_weights() (and matterport) put it.
    return [ROOT / "weights" / IMAGENET_WEIGHTS.filename,
            keras_cache_dir() / IMAGENET_WEIGHTS.filename]


def check_weights_arg(value: str) -> str:
    """Reject a --weights value that is neither a known name nor an existing file."""
    if value.lower() in WEIGHT_NAMES:
        return value.lower()
    if not os.path.isfile(value):
        raise argparse.ArgumentTypeError(
            f"--weights={value!r} is neither one of {', '.join(WEIGHT_NAMES)} "
            f"nor an existing weights file")
    return value


def resolve_weights(weights: str, logs: str, name: str) -> tuple[str | None, list[str]]:
    """(file to load or None, layers to exclude) for a checked --weights value.

    Args:
        weights: a check_weights_arg() value.
        logs: the --logs folder, searched for "last".
        name: config.NAME, whose newest log dir holds the "last" checkpoint.

    Raises:
        argparse.ArgumentTypeError: the file for coco / imagenet / last is not there;
            the message says how to get it (nothing is downloaded here).
    """
    if weights == "none":
        return None, []
    if weights == "coco":
        path = Path(os.environ.get(COCO_ENV) or ROOT / "weights" / "mask_rcnn_coco.h5")
        if not path.is_file():
            raise argparse.ArgumentTypeError(
                f"--weights=coco: {path} not found. Fetch it with "
                f"`python weights/fetch_weights.py coco` or point ${COCO_ENV} at a copy")
        return str(path), COCO_HEADS
    if weights == "imagenet":
        for path in _imagenet_candidates():
            if path.is_file():
                return str(path), []
        raise argparse.ArgumentTypeError(
            f"--weights=imagenet: none of {', '.join(map(str, _imagenet_candidates()))} "
            f"exists. Fetch it with `python weights/fetch_weights.py imagenet`")
    if weights == "last":
        from mrcnn.training import find_last

        try:
            return find_last(logs, name), []
        except FileNotFoundError as exc:
            raise argparse.ArgumentTypeError(f"--weights=last: {exc}") from exc
    return weights, []


def build_model(sample: Sample, args, mode: str):
    """MaskRCNN in `mode` with the --weights loaded; (model, weights path or None).

    The weights file is found before the model is built, so a missing one fails fast.
    """
    from mrcnn import model as modellib

    config = make_config(sample, args, inference=(mode == "inference"))
    path, exclude = resolve_weights(args.weights, args.logs, config.NAME)
    model = modellib.MaskRCNN(mode=mode, config=config, model_dir=args.logs)
    if getattr(args, "no_jit", False):
        model.keras_model.jit_compile = False
    if path is None:
        print(f"--weights=none: {mode} starts from random weights")
    else:
        print(f"loading weights {path}" + (f" (excluding {exclude})" if exclude else ""))
        model.load_weights(path, by_name=True, exclude=exclude)
    return model, path


# -------------------------------------------------------------------------- commands
def cmd_train(sample: Sample, args) -> dict:
    import keras

    keras.utils.set_random_seed(args.seed)
    options = parse_assignments(args.option, "--option") | {"seed": args.seed}
    train = load_dataset(sample, args.dataset, "train", options, args.limit)
    val = load_dataset(sample, args.dataset, args.val_subset, options, args.limit)
    model, path = build_model(sample, args, "training")
    augmentation = (sample.augmentation() if args.augment and sample.augmentation
                    else None)
    print(f"{sample.name}: {train.num_images} train / {val.num_images} "
          f"{args.val_subset} images; schedule {','.join(map(str, args.schedule))}")
    start = time.perf_counter()
    for phase in args.schedule:
        print(f"training {phase.layers} up to epoch {phase.epochs}, lr {phase.learning_rate:g}")
        model.train(train, val, learning_rate=phase.learning_rate, epochs=phase.epochs,
                    layers=phase.layers, augmentation=augmentation, seed=args.seed)
    summary = {"log_dir": str(model.log_dir), "last_checkpoint": model.find_last(),
               "weights": path or "none", "train_seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(summary))
    return summary


def _output_dir(sample: Sample, args, command: str) -> Path:
    if args.out:
        return Path(args.out)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    return Path(args.logs) / f"{sample.name}_{command}_{stamp}"


def _inputs(sample: Sample, args) -> tuple[list[str], list[np.ndarray], Dataset | None,
                                           list[int]]:
    """(names, images, dataset or None, internal ids) from --image or --dataset."""
    if getattr(args, "image", None):
        return ([Path(p).stem for p in args.image], [sample.read_image(p) for p in args.image],
                None, [])
    options = parse_assignments(args.option, "--option") | {"seed": args.seed}
    dataset = load_dataset(sample, args.dataset, args.subset, options, args.limit)
    ids = list(dataset.image_ids)
    names = [str(dataset.image_info[i]["id"]) for i in ids]
    return names, [dataset.load_image(i) for i in ids], dataset, ids


def detect_all(model, images: Sequence[np.ndarray]) -> list[dict]:
    """detect() one image at a time (the inference config's batch of one)."""
    return [model.detect([image], verbose=0)[0] for image in images]


def _write_overlay(path: Path, image: np.ndarray, detection: dict, class_names,
                   title: str) -> None:
    from mrcnn import visualize

    height, width = image.shape[:2]
    scale = 8.0 / max(height, width)  # 8 inches on the long side
    visualize.display_instances(image, detection["rois"], detection["masks"],
                                detection["class_ids"], class_names, detection["scores"],
                                title=title, figsize=(width * scale, height * scale),
                                save_path=path, seed=0)


def cmd_evaluate(sample: Sample, args) -> dict:
    from mrcnn import evaluation, export

    model, path = build_model(sample, args, "inference")
    names, images, dataset, ids = _inputs(sample, args)
    out = _output_dir(sample, args, "evaluate")
    start = time.perf_counter()
    detections = detect_all(model, images)
    seconds = time.perf_counter() - start
    report = evaluation.evaluate(
        out / "report.json", dataset, detections, ids, sample=sample.name,
        data=str(args.dataset), subset=args.subset, weights=path or "none",
        # Wall time of every detect() call, the first one's compilation included.
        detect_seconds=round(seconds, 2),
        command=" ".join(sys.argv))
    plots = evaluation.save_plots(report, out)
    export.write_coco_results(out / "coco_results.json", dataset, detections, ids)
    if sample.siim_submission:
        export.write_siim_submission(out / "submission.csv", dataset, detections, ids)
    for name, image, detection in list(zip(names, images, detections))[:args.overlays]:
        _write_overlay(out / "overlays" / f"{name}.png", image, detection,
                       dataset.class_names, name)
    summary = {"out": str(out), **report["summary"], "coco": report["coco"],
               "plots": sorted(str(p) for p in plots.values())}
    print(json.dumps(summary))
    return summary


def _detections_json(names: Sequence[str], detections: Sequence[dict]) -> list[dict]:
    return [{"image": name, "rois": d["rois"].tolist(),
             "class_ids": d["class_ids"].tolist(), "scores": d["scores"].tolist(),
             "mask_pixels": d["masks"].sum(axis=(0, 1)).tolist()}
            for name, d in zip(names, detections)]


def cmd_detect(sample: Sample, args) -> Path:
    model, _ = build_model(sample, args, "inference")
    names, images, dataset, _ = _inputs(sample, args)
    out = _output_dir(sample, args, args.command)
    detections = detect_all(model, images)
    class_names = dataset.class_names if dataset else list(sample.class_names)
    for name, image, detection in zip(names, images, detections):
        if args.command == "splash":
            from unet.inference import overlay, write_png

            write_png(out / f"{name}_splash.png",
                      overlay(image, detection["masks"].any(axis=-1)))
        else:
            _write_overlay(out / f"{name}.png", image, detection, class_names, name)
    (out / "detections.json").write_text(json.dumps(_detections_json(names, detections)))
    print(out)
    return out


# ---------------------------------------------------------------------------- parser
def build_parser(sample: Sample) -> argparse.ArgumentParser:
    schedule = ",".join(map(str, sample.schedule))
    parser = argparse.ArgumentParser(
        description=f"{sample.description}\n\nMask R-CNN on the {sample.name} dataset, "
                    f"matterport style. Run from the repository root.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"default schedule: {schedule} (LAYERS:EPOCH:LR; epochs are cumulative, "
               f"as matterport's train(epochs=))")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p, weights_default):
        p.add_argument("--dataset", metavar="DIR",
                       help=f"the dataset folder; {sample.dataset.__module__.replace('.', '/')}"
                            f".py describes the layouts it reads")
        p.add_argument("--weights", type=check_weights_arg, default=weights_default,
                       metavar="{coco,imagenet,last,none,PATH}",
                       help="coco: weights/mask_rcnn_coco.h5 (or $MRCNN_COCO_WEIGHTS) "
                            "without the class-specific heads; imagenet: the ResNet-50 "
                            "ImageNet file; last: the newest checkpoint under --logs; "
                            "none: random; PATH: a .h5 file "
                            f"(default: {weights_default or 'required'})")
        p.add_argument("--logs", default=str(ROOT / "logs"), metavar="DIR",
                       help="folder of training runs and checkpoints (default: %(default)s)")
        p.add_argument("--backbone", choices=("resnet50", "resnet101", "small"),
                       help=f"small: a light net for CPU demos and tests, no pretrained "
                            f"weights (samples/small_backbone.py); "
                            f"default: {sample.config.BACKBONE}")
        p.add_argument("--image-size", type=int, metavar="N",
                       help=f"side of the square molded image (IMAGE_MAX_DIM; IMAGE_MIN_DIM "
                            f"is capped to it), a multiple of 64 "
                            f"(default: {sample.config.IMAGE_MAX_DIM})")
        p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                       help="override any Config attribute, e.g. DETECTION_MAX_INSTANCES=10; "
                            "repeatable")
        p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help=f"keyword argument of the adapter's loader "
                            f"({sample.load.__qualname__}: see its docstring); repeatable")
        p.add_argument("--limit", type=int, default=0, metavar="N",
                       help="use only the first N images of each subset (0: all)")
        p.add_argument("--seed", type=int, default=0,
                       help="seed of the train/val split (and of the data order when "
                            "training): evaluate with the seed you trained with "
                            "(default: %(default)s)")

    train = sub.add_parser("train", help="fine-tune with the two-phase schedule")
    common(train, None)
    train.add_argument("--schedule", type=parse_schedule, default=sample.schedule,
                       metavar="LAYERS:EPOCH:LR,...",
                       help=f"training phases; LAYERS is heads, 3+, 4+, 5+, all or a regex "
                            f"(default: {schedule})")
    train.add_argument("--steps-per-epoch", type=int, metavar="N",
                       help=f"default: {sample.config.STEPS_PER_EPOCH}")
    train.add_argument("--validation-steps", type=int, metavar="N",
                       help=f"0 skips validation (default: {sample.config.VALIDATION_STEPS})")
    train.add_argument("--val-subset", default="val",
                       help="subset validated on after each epoch (default: %(default)s)")
    train.add_argument("--no-augment", dest="augment", action="store_false",
                       help="train without the sample's augmentation")

    for name, help_text in (
            ("evaluate", "detect on a subset and score it: report.json, plots, COCO "
                         "results" + (", SIIM submission" if sample.siim_submission else "")),
            ("detect", "overlay PNGs (boxes, masks, scores) and detections.json"),
            ("splash", "image-sized PNGs with the detected masks tinted")):
        p = sub.add_parser(name, help=help_text)
        common(p, "last")
        p.add_argument("--subset", default="val",
                       help="subset of --dataset: train, val, all (ISIC also test) "
                            "(default: %(default)s)")
        p.add_argument("--out", metavar="DIR",
                       help=f"output folder (default: LOGS/{sample.name}_{name}_TIMESTAMP)")
        p.add_argument("--no-jit", action="store_true",
                       help="run the model without XLA (already so on a TensorFlow "
                            "CPU, see mrcnn.xla): the first image is done several seconds "
                            "sooner, worth it for a few small images")
        p.add_argument("--min-confidence", type=float, metavar="P",
                       help=f"keep detections scoring at least P "
                            f"(DETECTION_MIN_CONFIDENCE, default: "
                            f"{sample.config.DETECTION_MIN_CONFIDENCE})")
        if name == "evaluate":
            p.add_argument("--overlays", type=int, default=8, metavar="N",
                           help="overlay PNGs to write (default: %(default)s)")
        else:
            p.add_argument("--image", action="append", metavar="PATH",
                           help="an image file instead of --dataset; repeatable")
    return parser


def parse_args(sample: Sample, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; bad input exits with status 2 and a message."""
    parser = build_parser(sample)
    args = parser.parse_args(argv)
    if args.command == "train" and args.weights is None:
        parser.error("train needs --weights={coco,imagenet,last,none,PATH}")
    needs_dataset = args.command in ("train", "evaluate") or not args.image
    if needs_dataset and not args.dataset:
        parser.error(f"{args.command} needs --dataset=DIR"
                     + ("" if args.command in ("train", "evaluate") else " or --image=PATH"))
    if args.dataset and not os.path.isdir(args.dataset):
        parser.error(f"--dataset: folder not found: {args.dataset}")
    for path in getattr(args, "image", None) or []:
        if not os.path.isfile(path):
            parser.error(f"--image: file not found: {path}")
    return args


def main(sample: Sample, argv: Sequence[str] | None = None):
    """Run one command; argument errors found while running also exit with status 2."""
    parser = build_parser(sample)
    args = parse_args(sample, argv)
    command = {"train": cmd_train, "evaluate": cmd_evaluate,
               "detect": cmd_detect, "splash": cmd_detect}[args.command]
    try:
        return command(sample, args)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
