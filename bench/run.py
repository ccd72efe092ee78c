"""Mask R-CNN speed and memory, ours and (optionally) torchvision's; prints one JSON object.

    python bench/run.py --backbone resnet50 --size 256 --batch 2 --what detect,step,train,data
    python bench/run.py --backbone resnet101 --size 1024 --batch 1 --classes 81 --what detect,step
    python bench/run.py --backbone resnet101 --resize-mode pad64 --image-shape 130x190 --what detect
    KERAS_BACKEND=jax python bench/run.py --size 1024 --batch 4 --torchvision --out gpu.json

What (--what, comma-separated):
    detect  MaskRCNN.detect() end to end (mold, compiled network, unmold to full-size
            masks): images/s, detections per image, and the host's mold_s and unmold_s.
    step    the raw compiled inference step (keras_model.predict_on_batch on molded
            inputs): seconds and images/s, plus its compile time (first call - steady).
    train   one training step (MaskRCNN(mode="training"), compile(), train_on_batch on a
            synthetic batch from the training pipeline), when the library has it.
    data    the training-data pipeline (load_image_gt + build_rpn_targets per image,
            through mrcnn.pipeline.MaskRCNNSequence when present): images/s.
    stages  where the inference step's time goes: the graph cut after the backbone
            (C5), the FPN, the RPN head, the proposals, the detections and the masks,
            each prefix compiled whole and timed; a stage's cost is its prefix's time
            minus the previous one's (XLA fuses across the cuts, so this is a profile,
            not an exact split).

Inference is compared at equal detection counts: DETECTION_MIN_CONFIDENCE defaults to 0
here and the class-logit bias makes every ROI foreground (class 1), so that up to
DETECTION_MAX_INSTANCES = 100 detections survive per image, and
torchvision runs with box_score_thresh=0 and box_detections_per_img=100. Both report the
detections they actually returned. Random weights throughout: every shape is static,
so the cost does not depend on them (except the number of detections, reported).

--torchvision adds torchvision's maskrcnn_resnet50_fpn (random init, 2 classes, same
image size and batch) on the same device when torch and torchvision import, and the
ratios ours / torchvision in images/s (above 1: we are faster).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# JAX takes 75% of the GPU at start-up by default, which would starve torchvision in
# the same process and hide the real peak; allocate on demand instead.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if "--torchvision" in sys.argv:
    # torch (and its triton) must load before TensorFlow: with TF loaded first, importing
    # triton segfaults (seen with torch 2.14.1's CUDA build on a CPU machine).
    try:
        import torch  # noqa: E402, F401
        import torchvision.models.detection  # noqa: E402, F401
    except ImportError:
        pass  # bench_torchvision reports it

import keras  # noqa: E402
import numpy as np  # noqa: E402

import timing  # noqa: E402
from bench_data import EllipseDataset  # noqa: E402
from mrcnn import winograd, xla  # noqa: E402
from mrcnn.config import Config  # noqa: E402
from mrcnn.model import MaskRCNN  # noqa: E402
from samples.unet import parse_size  # noqa: E402

WHAT = ("detect", "step", "train", "data", "stages")
# Cumulative cut points of the inference graph, by matterport's layer names.
STAGES = (("backbone", ("res5c_out",)),
          ("fpn", ("fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "fpn_p6")),
          ("rpn_head", ("rpn_class", "rpn_bbox")),
          ("proposals", ("ROI",)),
          ("detections", ("mrcnn_detection",)),
          ("masks", ("mrcnn_mask",)))
PRECISIONS = ("float32", "bfloat16", "float16")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet101"])
    parser.add_argument("--size", type=int, default=256, help="IMAGE_MIN_DIM = IMAGE_MAX_DIM")
    parser.add_argument("--batch", type=int, default=1, help="IMAGES_PER_GPU")
    parser.add_argument("--images", type=int, default=None,
                        help="images per detect() call (default: --batch)")
    parser.add_argument("--classes", type=int, default=2, help="NUM_CLASSES (81 for COCO)")
    parser.add_argument("--resize-mode", default="square", choices=("square", "pad64"),
                        help="IMAGE_RESIZE_MODE; pad64 (IMAGE_MIN_DIM 64) molds each image "
                        "to its own multiple of 64 and runs a graph of that size")
    parser.add_argument("--image-shape", type=parse_size, default=None, metavar="N|HxW",
                        help="the images given to detect() (default --size x --size); with "
                        "pad64, a smaller shape runs on another graph than the built one")
    parser.add_argument("--what", default="detect,step",
                        help=f"comma-separated subset of {','.join(WHAT)}")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="Config.DTYPE_POLICY: float32, or mixed_<precision>")
    parser.add_argument("--conv3x3", default="direct", choices=winograd.ALGORITHMS,
                        help="3x3 convolution algorithm (mrcnn.winograd): direct (the "
                        "library's default), winograd, or auto = Winograd on a CPU under XLA")
    parser.add_argument("--xla", default="auto", choices=xla.MODES,
                        help="XLA-compile the steps: auto (not on a TensorFlow CPU), on, off")
    parser.add_argument("--min-confidence", type=float, default=0.0,
                        help="DETECTION_MIN_CONFIDENCE (0 keeps 100 detections per image)")
    parser.add_argument("--train-layers", default="all", help="train(layers=...) selection")
    parser.add_argument("--data-images", type=int, default=8, help="images timed for data")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure")
    parser.add_argument("--torchvision", action="store_true",
                        help="also time torchvision's maskrcnn_resnet50_fpn")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    args.what = [w.strip() for w in args.what.split(",") if w.strip()]
    unknown = sorted(set(args.what) - set(WHAT))
    if unknown or not args.what:
        parser.error(f"--what takes a comma-separated subset of {','.join(WHAT)}; "
                     f"got {unknown or 'nothing'}")
    if args.size % 64:
        parser.error(f"--size must be a multiple of 64, got {args.size}")
    if min(args.batch, args.repeats, args.data_images) < 1:
        parser.error("--batch, --repeats and --data-images must be >= 1")
    args.images = args.images or args.batch
    args.image_shape = args.image_shape or (args.size, args.size)
    if max(args.image_shape) > args.size:
        parser.error(f"--image-shape {args.image_shape} exceeds --size {args.size}")
    return args


def _config(args: argparse.Namespace) -> Config:
    class BenchConfig(Config):
        NAME = "bench"
        IMAGES_PER_GPU = args.batch
        NUM_CLASSES = args.classes
        BACKBONE = args.backbone
        IMAGE_RESIZE_MODE = args.resize_mode
        IMAGE_MIN_DIM = 64 if args.resize_mode == "pad64" else args.size
        IMAGE_MAX_DIM = args.size
        DETECTION_MIN_CONFIDENCE = args.min_confidence
        DTYPE_POLICY = None if args.precision == "float32" else f"mixed_{args.precision}"

    return BenchConfig()


def _images(args: argparse.Namespace, count: int,
            shape: tuple[int, int] | None = None) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*(shape or (args.size, args.size)), 3), dtype=np.uint8)
            for _ in range(count)]


def _rounded(figures: dict, digits: int = 4) -> dict:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in figures.items()}


def _force_foreground(model: MaskRCNN) -> None:
    """Make class 1 win every ROI, so that up to 100 detections survive per image.

    With random weights about half the ROIs would be background and dropped; torchvision
    scores every class of every box instead, so without this the two would not return
    the same number of detections. Costs nothing: the graph's shapes are static.
    """
    layer = model.keras_model.get_layer("mrcnn_class_logits")
    bias = np.zeros(layer.bias.shape, np.float32)
    bias[1] = 20.0
    layer.bias.assign(bias)


def bench_inference(args: argparse.Namespace, config: Config) -> dict:
    """detect() end to end and the raw compiled step of one inference model."""
    start = time.perf_counter()
    model = MaskRCNN("inference", config, tempfile.mkdtemp(prefix="bench_"))
    result = {"build_s": round(time.perf_counter() - start, 3)}
    batch = config.BATCH_SIZE
    if args.min_confidence == 0:
        _force_foreground(model)

    molded, metas, _ = model.mold_inputs(_images(args, batch))
    anchors = model.get_anchors(molded.shape[1:])
    inputs = [molded.astype(np.float32), metas.astype(np.float32),
              np.broadcast_to(anchors, (batch,) + anchors.shape)]
    step = timing.first_and_steady(
        lambda: timing.to_host(model.keras_model.predict_on_batch(inputs)), args.repeats)
    if "step" in args.what:
        result["step"] = _rounded({**step, "images_per_s": batch / step["median_s"],
                                   "best_images_per_s": batch / step["min_s"]})
    else:
        result["compile_s"] = round(step["compile_s"], 3)
    if "stages" in args.what:
        result["stages"] = bench_stages(model.keras_model, inputs, args.repeats)
    if "detect" in args.what:
        images = _images(args, args.images, args.image_shape)
        detections = model.detect(images)  # warm the host-side caches too
        detect = timing.repeat_seconds(lambda: model.detect(images), args.repeats)
        # The host's share of detect(), timed apart: molding, and unmolding the
        # network's outputs into full-size masks.
        molded, metas, windows = model.mold_inputs(images)
        mold = timing.repeat_seconds(lambda: model.mold_inputs(images), args.repeats)
        raw = list(zip(images, *model._predict_detections(molded, metas), windows))

        def unmold():
            for image, image_detections, image_masks, window in raw:
                model.unmold_detections(image_detections, image_masks, image.shape,
                                        molded.shape[1:], window)

        unmold_s = timing.repeat_seconds(unmold, args.repeats)["median_s"]
        result["detect"] = _rounded({
            "images": args.images,
            "image_shape": list(args.image_shape),
            **detect,
            "images_per_s": args.images / detect["median_s"],
            "best_images_per_s": args.images / detect["min_s"],
            "detections_per_image": float(np.mean([len(d["scores"]) for d in detections])),
            "mold_s": mold["median_s"],
            "unmold_s": unmold_s,
        })
    return result


def bench_stages(model: keras.Model, inputs: list, repeats: int) -> dict:
    """Steady seconds of each prefix of the inference graph (STAGES) and the
    difference to the previous prefix: {stage: {"cumulative_s", "stage_s"}}."""
    figures, previous = {}, 0.0
    for stage, names in STAGES:
        prefix = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
        prefix.jit_compile = model.jit_compile
        seconds = timing.first_and_steady(
            lambda: timing.to_host(prefix.predict_on_batch(inputs)), repeats)["min_s"]
        figures[stage] = _rounded({"cumulative_s": seconds, "stage_s": seconds - previous})
        previous = seconds
    return figures


def bench_train(args: argparse.Namespace, config: Config) -> dict:
    """One training step, when MaskRCNN(mode="training") and the pipeline exist."""
    try:
        from mrcnn.pipeline import MaskRCNNSequence

        model = MaskRCNN("training", config, tempfile.mkdtemp(prefix="bench_"))
        model.set_trainable(args.train_layers, verbose=0)
        model.compile(learning_rate=config.LEARNING_RATE, momentum=config.LEARNING_MOMENTUM)
        sequence = MaskRCNNSequence(EllipseDataset(args.size, config.BATCH_SIZE), config,
                                    shuffle=False, seed=0)
        (batch,) = sequence[0]
    except (ImportError, NotImplementedError) as error:
        return {"available": False, "reason": f"{type(error).__name__}: {error}"}
    step = timing.first_and_steady(
        lambda: timing.to_host(model.keras_model.train_on_batch(batch)), args.repeats)
    return _rounded({"available": True, "layers": args.train_layers, **step,
                     "images_per_s": config.BATCH_SIZE / step["median_s"],
                     "best_images_per_s": config.BATCH_SIZE / step["min_s"]})


def bench_data(args: argparse.Namespace, config: Config) -> dict:
    """Images/s of the training-data path on synthetic 3-instance images."""
    dataset = EllipseDataset(args.size, args.data_images)
    try:
        from mrcnn.pipeline import MaskRCNNSequence
    except ImportError:
        MaskRCNNSequence = None
    if MaskRCNNSequence is not None:
        # One image per batch: the figure is per image whatever BATCH_SIZE is. The
        # pipeline builds one image at a time (a lock guards the global RNGs), so
        # its worker threads overlap the training step, not each other.
        sequence = MaskRCNNSequence(dataset, config, shuffle=False, seed=0, batch_size=1,
                                    steps_per_epoch=args.data_images)
        sequence[0]
        how = "mrcnn.pipeline.MaskRCNNSequence, one image per batch"
        seconds = timing.repeat_seconds(
            lambda: [sequence[i] for i in range(len(sequence))], 1)["median_s"]
    else:
        from mrcnn.anchors import compute_backbone_shapes, generate_pyramid_anchors
        from mrcnn.data import build_rpn_targets, load_image_gt

        anchors = generate_pyramid_anchors(
            config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
            compute_backbone_shapes(config, config.IMAGE_SHAPE), config.BACKBONE_STRIDES,
            config.RPN_ANCHOR_STRIDE)

        def one_pass():
            for image_id in dataset.image_ids:
                image, _, class_ids, boxes, _ = load_image_gt(
                    dataset, config, image_id, use_mini_mask=config.USE_MINI_MASK)
                build_rpn_targets(image.shape, anchors, class_ids, boxes, config)

        how = "load_image_gt + build_rpn_targets"
        seconds = timing.repeat_seconds(one_pass, 1)["median_s"]
    return _rounded({"how": how, "images": args.data_images,
                     "ms_per_image": 1000 * seconds / args.data_images,
                     "images_per_s": args.data_images / seconds})


def bench_torchvision(args: argparse.Namespace) -> dict:
    """torchvision's maskrcnn_resnet50_fpn, random init, 2 classes, same sizes."""
    try:
        import torch
        import torchvision
        from torchvision.models.detection import maskrcnn_resnet50_fpn
    except ImportError as error:
        return {"available": False, "reason": f"ImportError: {error}"}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2,
                                  min_size=args.size, max_size=args.size,
                                  box_score_thresh=0.0, box_detections_per_img=100).to(device)
    autocast = (torch.autocast(device.type, dtype=getattr(torch, args.precision))
                if args.precision != "float32" else None)

    def synced(fn):
        def run():
            if autocast is None:
                out = fn()
            else:
                with autocast:
                    out = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return out
        return run

    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, args.size, args.size, generator=generator).to(device)
              for _ in range(args.batch)]
    result = {"available": True, "torch": torch.__version__,
              "torchvision": torchvision.__version__, "device": str(device)}
    if {"detect", "step"} & set(args.what):
        model.eval()

        def infer():
            # Results to the host, as detect() returns numpy arrays.
            with torch.inference_mode():
                return [{k: v.cpu() for k, v in o.items()} for o in model(images)]

        step = timing.first_and_steady(synced(infer), args.repeats)
        outputs = synced(infer)()
        result["detect"] = _rounded({
            **step, "images_per_s": args.batch / step["median_s"],
            "best_images_per_s": args.batch / step["min_s"],
            "detections_per_image": float(np.mean([len(o["scores"]) for o in outputs]))})
    if "train" in args.what:
        model.train()
        targets = []
        for _ in range(args.batch):
            masks = torch.zeros(3, args.size, args.size, dtype=torch.uint8)
            boxes = []
            for k in range(3):
                y, x = (torch.rand(2, generator=generator) * args.size * 0.6).int().tolist()
                h = w = max(8, args.size // 5)
                masks[k, y:y + h, x:x + w] = 1
                boxes.append([x, y, x + w, y + h])  # torchvision boxes are (x1, y1, x2, y2)
            targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32).to(device),
                            "labels": torch.ones(3, dtype=torch.int64, device=device),
                            "masks": masks.to(device)})
        optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)

        def train_step():
            losses = model(images, targets)
            loss = sum(losses.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        step = timing.first_and_steady(synced(train_step), args.repeats)
        result["train"] = _rounded({**step, "images_per_s": args.batch / step["median_s"],
                                    "best_images_per_s": args.batch / step["min_s"]})
    return result


def _ratios(ours: dict, theirs: dict) -> dict:
    """ours / torchvision in images/s, for the figures both have."""
    ratios = {}
    for key, our_key in (("detect", "detect"), ("train", "train")):
        mine, other = ours.get(our_key, {}), theirs.get(key, {})
        if "images_per_s" in mine and "images_per_s" in other:
            ratios[f"{key}_images_per_s"] = round(mine["images_per_s"] / other["images_per_s"], 3)
    return ratios


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    winograd.set_conv3x3_algorithm(args.conv3x3)
    xla.set_xla(args.xla)
    config = _config(args)
    ours: dict = {}
    if {"detect", "step", "stages"} & set(args.what):
        ours.update(bench_inference(args, config))
    if "train" in args.what:
        ours["train"] = bench_train(args, config)
    if "data" in args.what:
        ours["data"] = bench_data(args, config)
    result = {
        "benchmark": "mask_rcnn",
        "config": {"backbone": args.backbone, "image_size": args.size, "batch": args.batch,
                   "num_classes": args.classes, "precision": args.precision,
                   "conv3x3": winograd.conv3x3_algorithm(),
                   "xla": xla.use_xla(), "xla_mode": xla.xla_mode(),
                   "detection_min_confidence": args.min_confidence,
                   "resize_mode": args.resize_mode, "repeats": args.repeats,
                   "what": args.what},
        "environment": timing.environment(),
        "ours": ours,
    }
    if args.torchvision:
        result["torchvision"] = bench_torchvision(args)
        result["ratios_ours_over_torchvision"] = _ratios(ours, result["torchvision"])
    result["peak_host_mb"] = timing.peak_host_mb()
    result["device_memory_mb"] = timing.device_memory_mb()
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
