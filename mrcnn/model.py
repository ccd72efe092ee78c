"""Matterport's ``mrcnn.model``: the MaskRCNN class, plus re-exports of the stage modules.

The graph is assembled here from small modules (backbone, fpn, rpn, proposals,
roi_align, heads, detection); the numpy data functions live in mrcnn/data.py. Code
written against matterport imports all of them from here.

Inference graph (B = BATCH_SIZE, A = anchors for the image size, R =
POST_NMS_ROIS_INFERENCE, D = DETECTION_MAX_INSTANCES, K = NUM_CLASSES):
    inputs:  input_image [B, H, W, C] (molded), input_image_meta [B, IMAGE_META_SIZE],
             input_anchors [B, A, (y1, x1, y2, x2)] normalized
    outputs: mrcnn_detection [B, D, (y1, x1, y2, x2, class_id, score)] normalized,
             zero-padded; mrcnn_class [B, R, K]; mrcnn_bbox [B, R, K, 4];
             mrcnn_mask [B, D, 28, 28, K]; ROI [B, R, 4] normalized, zero-padded;
             rpn_class [B, A, 2]; rpn_bbox [B, A, 4]
"""
from __future__ import annotations

import datetime
import os
import re
from collections import OrderedDict
from typing import Sequence

import keras
import numpy as np

from mrcnn import training, weights
from mrcnn.anchors import compute_backbone_shapes, generate_pyramid_anchors  # noqa: F401
from mrcnn.backbone import BatchNorm, resnet_graph  # noqa: F401
from mrcnn.boxes import (  # noqa: F401  (matterport's graph helpers lived in model.py)
    apply_box_deltas_graph,
    clip_boxes_graph,
    denorm_boxes,
    denorm_boxes_graph,
    norm_boxes,
    norm_boxes_graph,
    overlaps_graph,
)
from mrcnn.data import (  # noqa: F401
    build_detection_targets,
    build_rpn_targets,
    compose_image_meta,
    generate_random_rois,
    load_image_gt,
    mold_image,
    parse_image_meta,
    unmold_image,
)
from mrcnn.detection import DetectionLayer
from mrcnn.distribute import graph_batch, scope_factory
from mrcnn.dtype_policy import policy_scope
from mrcnn.fpn import fpn_graph
from mrcnn.heads import RoiConv2D, RoiConv2DTranspose, classifier_head, mask_head  # noqa: F401
from mrcnn.image import resize_image
from mrcnn.image_meta import parse_image_meta_graph  # noqa: F401
from mrcnn.masks import unmold_masks
from mrcnn.pipeline import MaskRCNNSequence, data_generator  # noqa: F401
from mrcnn.proposals import ProposalLayer
from mrcnn.roi_align import PyramidROIAlign
from mrcnn.rpn import build_rpn_model, rpn_outputs
from mrcnn.train_graph import build_training_model
from mrcnn.xla import use_xla


def log(text: str, array: np.ndarray | None = None) -> None:
    """Print a text and, when given, an array's shape, range and dtype (matterport's log)."""
    if array is not None:
        array = np.asarray(array)
        text = text.ljust(25)
        if array.size:
            text += (f"shape: {str(array.shape):20}  min: {array.min():10.5f}  "
                     f"max: {array.max():10.5f}  {array.dtype}")
        else:
            text += f"shape: {str(array.shape):20}  {'':35}{array.dtype}"
    print(text)


class MaskRCNN:
    """Matterport's Mask R-CNN model wrapper.

    The Keras model is in ``keras_model``. Its layers carry matterport's names, so
    matterport's weight files (mask_rcnn_coco.h5, training checkpoints) load by name.

    Args:
        mode: "training" or "inference".
        config: a Config (subclass) instance.
        model_dir: directory for training logs and checkpoints.

    Attributes (training): ``epoch`` (epochs completed; train() continues from it),
    ``log_dir`` and ``checkpoint_path`` (see set_log_dir).
    """

    def __init__(self, mode: str, config, model_dir: str):
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
        if mode == "training" and not config.NAME:
            raise ValueError("config.NAME must be set to train: it names the log "
                             "directory and the checkpoints")
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        self.epoch = 0
        if config.NAME:
            self.set_log_dir()
        # GPU_COUNT > 1: variables are made, compiled and trained in the strategy's scope.
        self._scope = scope_factory(config.GPU_COUNT if mode == "training" else 1)
        with self._scope():
            self.keras_model = self.build(mode=mode, config=config)
        # detect()'s two programs: the graph up to the detections, per molded (h, w)
        # ("none"/"pad64" resizing gives several), and the mask head per row count.
        self._detection_prefixes: dict[tuple, keras.Model] = {}
        self._mask_heads: dict[tuple, keras.Model] = {}

    # ------------------------------------------------------------------ graph
    def build(self, mode: str, config, image_shape: Sequence[int] | None = None) -> keras.Model:
        """Build the Mask R-CNN Keras model for `mode`.

        Args:
            mode: "inference" (see the module docstring) or "training" (see
                mrcnn/train_graph.py).
            config: the Config.
            image_shape: molded [H, W, C]; default config.IMAGE_SHAPE (training always
                uses IMAGE_SHAPE). Every shape is static so that the whole graph
                compiles with XLA.

        The layers are made under config.DTYPE_POLICY (None: Keras's global policy).
        """
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
        with policy_scope(config.DTYPE_POLICY):
            if mode == "training":
                return build_training_model(config, self._feature_maps,
                                            self.get_anchors(config.IMAGE_SHAPE),
                                            batch=graph_batch(config))
            return self._inference_graph(
                config, config.IMAGE_SHAPE if image_shape is None else image_shape)

    def _inference_graph(self, config, image_shape: Sequence[int]) -> keras.Model:
        """The inference model of the module docstring for a molded [H, W, C]."""
        input_image, input_image_meta, input_anchors = self._inference_inputs(config,
                                                                               image_shape)
        feature_maps = self._feature_maps(input_image, config)

        rpn = build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS),
                              config.TOP_DOWN_PYRAMID_SIZE)
        rpn_class_logits, rpn_class, rpn_bbox = rpn_outputs(rpn, feature_maps)
        rpn_rois = ProposalLayer(
            proposal_count=config.POST_NMS_ROIS_INFERENCE,
            nms_threshold=config.RPN_NMS_THRESHOLD,
            pre_nms_limit=config.PRE_NMS_LIMIT,
            rpn_bbox_std_dev=np.asarray(config.RPN_BBOX_STD_DEV).tolist(),
            name="ROI")([rpn_class, rpn_bbox, input_anchors])

        mrcnn_feature_maps = feature_maps[:4]  # P6 only feeds the RPN
        pooled = PyramidROIAlign((config.POOL_SIZE, config.POOL_SIZE),
                                 name="roi_align_classifier")(
            [rpn_rois, input_image_meta] + mrcnn_feature_maps)
        _, mrcnn_class, mrcnn_bbox = classifier_head(
            pooled, config.NUM_CLASSES, config.FPN_CLASSIF_FC_LAYERS_SIZE, config.TRAIN_BN)
        detections = DetectionLayer(
            detection_max_instances=config.DETECTION_MAX_INSTANCES,
            detection_min_confidence=config.DETECTION_MIN_CONFIDENCE,
            detection_nms_threshold=config.DETECTION_NMS_THRESHOLD,
            bbox_std_dev=np.asarray(config.BBOX_STD_DEV).tolist(),
            name="mrcnn_detection")([rpn_rois, mrcnn_class, mrcnn_bbox, input_image_meta])
        # Masks are predicted for the final boxes only, not for all proposals.
        detection_boxes = detections[..., :4]
        pooled_masks = PyramidROIAlign((config.MASK_POOL_SIZE, config.MASK_POOL_SIZE),
                                       name="roi_align_mask")(
            [detection_boxes, input_image_meta] + mrcnn_feature_maps)
        mrcnn_mask = mask_head(pooled_masks, config.NUM_CLASSES, config.TRAIN_BN)

        model = keras.Model(
            [input_image, input_image_meta, input_anchors],
            [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox],
            name="mask_rcnn")
        # Static shapes throughout: one XLA program per batch where XLA pays (mrcnn.xla).
        # Inference is never replicated (see __init__), whatever GPU_COUNT says.
        model.jit_compile = use_xla()
        return model

    def _detection_prefix(self, image_shape: Sequence[int]) -> keras.Model:
        """keras_model up to [mrcnn_detection, roi_align_mask] for a molded [H, W, C].

        With IMAGE_RESIZE_MODE "none" or "pad64" the molded size follows each image. Each
        size gets its own static-shape graph (and XLA program), but made of keras_model's
        very layers, so it shares their variables: nothing is copied per call, and weights
        loaded later are seen. It is XLA-compiled when keras_model.jit_compile is set now.
        """
        size = tuple(int(d) for d in image_shape[:2])
        key = (size, bool(self.keras_model.jit_compile))
        if key not in self._detection_prefixes:
            built_size = tuple(self.keras_model.inputs[0].shape[1:3])
            if size == built_size:
                prefix = keras.Model(self.keras_model.inputs,
                                     [self.keras_model.get_layer("mrcnn_detection").output,
                                      self.keras_model.get_layer("roi_align_mask").output])
            else:
                prefix = keras.models.clone_model(
                    self._detection_prefix(built_size),
                    input_tensors=self._inference_inputs(self.config, image_shape),
                    clone_function=lambda layer: layer)  # the same layers, not copies
            prefix.jit_compile = self.keras_model.jit_compile
            self._detection_prefixes[key] = prefix
        return self._detection_prefixes[key]

    def _inference_inputs(self, config, image_shape: Sequence[int]) -> list:
        """[input_image, input_image_meta, input_anchors] for a molded [H, W, C]."""
        image_shape = tuple(int(d) for d in image_shape)
        if image_shape[0] % 64 or image_shape[1] % 64:
            raise ValueError(f"the molded image size {image_shape[:2]} must be a multiple of "
                             f"64 on both sides (five stride-2 stages and the P6 pool)")
        batch = config.BATCH_SIZE
        num_anchors = len(self.get_anchors(image_shape))
        return [keras.Input(shape=image_shape, batch_size=batch, name="input_image"),
                keras.Input(shape=(config.IMAGE_META_SIZE,), batch_size=batch,
                            name="input_image_meta"),
                keras.Input(shape=(num_anchors, 4), batch_size=batch, name="input_anchors")]

    @staticmethod
    def _feature_maps(input_image, config) -> list:
        """[P2, P3, P4, P5, P6] from the configured backbone."""
        if callable(config.BACKBONE):
            _, c2, c3, c4, c5 = config.BACKBONE(input_image, stage5=True,
                                                train_bn=config.TRAIN_BN)
        else:
            _, c2, c3, c4, c5 = resnet_graph(input_image, config.BACKBONE, stage5=True,
                                             train_bn=config.TRAIN_BN)
        return fpn_graph(c2, c3, c4, c5, config.TOP_DOWN_PYRAMID_SIZE)

    # ---------------------------------------------------------------- weights
    def load_weights(self, filepath: str, by_name: bool = False,
                     exclude=None, skip_mismatch: bool = False) -> weights.LoadReport:
        """Load a matterport/Keras-2 HDF5 weights file (or a Keras 3 .weights.h5).

        Args:
            filepath: the weights file.
            by_name: match layers by name (needed when the architectures differ).
            exclude: layer names to skip, e.g. the class-specific heads when fine-tuning
                mask_rcnn_coco.h5 on another number of classes.
            skip_mismatch: leave layers whose weight shapes differ untouched (with a
                warning) instead of raising (an addition to matterport's signature).

        Returns:
            The report of mrcnn.weights.load_weights (layers loaded, skipped, missing).

        As matterport, a training checkpoint's path (``.../{name}YYYYmmddTHHMM/
        mask_rcnn_{name}_NNNN.h5``) also sets the log dir and ``epoch`` to continue it.
        """
        report = weights.load_weights(self.keras_model, filepath, by_name=by_name,
                                      exclude=exclude, skip_mismatch=skip_mismatch)
        if self.config.NAME:
            self.set_log_dir(filepath)
        return report

    def get_imagenet_weights(self) -> str:
        """Path of the ResNet-50 ImageNet "notop" weights file (matterport's method).

        Looks in Keras's cache ($KERAS_HOME/models or ~/.keras/models) and downloads only
        when the file is absent; offline, that is a RuntimeError naming the URL and where
        to put the file. Load it with ``load_weights(path, by_name=True)``.
        """
        return str(weights.get_imagenet_weights())

    # --------------------------------------------------------------- training
    def set_log_dir(self, model_path: str | None = None) -> None:
        """Set ``log_dir``, ``checkpoint_path`` and ``epoch`` (matterport's set_log_dir).

        A new run gets ``{model_dir}/{name}{now:%Y%m%dT%H%M}`` and epoch 0; a checkpoint
        path of a previous run gives back its log dir and the epochs it had done.
        """
        self.epoch = 0
        now = datetime.datetime.now()
        parsed = training.parse_checkpoint_path(model_path) if model_path else None
        if parsed is not None:
            now, self.epoch = parsed
        self.log_dir = training.log_dir_path(self.model_dir, self.config.NAME, now)
        self.checkpoint_path = training.checkpoint_path(self.log_dir, self.config.NAME)

    def find_last(self) -> str:
        """Path of the last checkpoint of the newest run of config.NAME in model_dir.

        Raises:
            FileNotFoundError: there is no such run or it has no checkpoint.
        """
        return training.find_last(self.model_dir, self.config.NAME)

    def set_trainable(self, layer_regex: str, keras_model=None, indent: int = 0,
                      verbose: int = 1) -> list[str]:
        """Make trainable the layers that `layer_regex` selects, the others frozen.

        Args:
            layer_regex: "heads", "3+", "4+", "5+", "all" or a regular expression.
            verbose: 1 prints the selected layer names, as matterport.

        Returns:
            The selected layer names (nested ones as ``outer/inner``).
        """
        selected = training.set_trainable(keras_model or self.keras_model, layer_regex)
        if verbose:
            for name in selected:
                log(" " * indent + name)
        return selected

    def compile(self, learning_rate: float, momentum: float) -> None:
        """SGD with momentum and GRADIENT_CLIP_NORM; the train step XLA-compiled where
        mrcnn.xla.use_xla says so (not on a TensorFlow CPU by default).

        Call again after changing the trainable layers: Keras builds its train function
        and the optimizer's slots for the trainable weights of the time.
        """
        self._require_training("compile")
        with self._scope():  # the optimizer's variables belong to the strategy too
            optimizer = training.build_optimizer(learning_rate, momentum,
                                                 self.config.GRADIENT_CLIP_NORM)
            self.keras_model.compile(optimizer=optimizer,
                                     jit_compile=use_xla(self.config.GPU_COUNT))

    def _require_training(self, what: str) -> None:
        if self.mode != "training":
            raise ValueError(f"{what} needs a MaskRCNN built with mode='training'; this "
                             f"one is {self.mode!r}")

    def train(self, train_dataset, val_dataset, learning_rate: float, epochs: int,
              layers: str, augmentation=None, custom_callbacks=None,
              no_augmentation_sources=None, *, workers: int | None = None,
              seed: int | None = None, verbose: int = 1):
        """Train the selected layers up to epoch `epochs` (matterport's train()).

        `epochs` is cumulative: a second call with ``epochs=40`` after one with
        ``epochs=20`` trains 20 more. Each epoch is STEPS_PER_EPOCH batches of
        BATCH_SIZE images, validated on VALIDATION_STEPS batches, and ends with
        ``mask_rcnn_{name}_{epoch:04d}.h5`` in ``log_dir`` (legacy HDF5, written
        atomically), a row of ``losses.csv`` and, where TensorFlow is installed,
        TensorBoard logs. A NaN or infinite loss stops training with
        mrcnn.training.NaNLossError.

        Args:
            train_dataset, val_dataset: prepared utils.Dataset objects; validation is
                skipped when val_dataset is None or VALIDATION_STEPS is 0.
            learning_rate: the SGD learning rate.
            epochs: the epoch number to train up to.
            layers: "heads", "3+", "4+", "5+", "all" or a regex of layer names.
            augmentation: albumentations / imgaug pipeline for the training images.
            custom_callbacks: more keras callbacks.
            no_augmentation_sources: dataset sources never augmented.
            workers: threads preparing batches; default the CPU count.
            seed: seed of the data order and augmentation (mrcnn.pipeline); None draws one.
            verbose: Keras fit verbosity (1 = progress bar).

        Returns:
            The keras History of this call.
        """
        self._require_training("train")
        config = self.config
        workers = workers or os.cpu_count() or 1
        random_rois = 0 if config.USE_RPN_ROIS else config.POST_NMS_ROIS_TRAINING
        common = dict(config=config, random_rois=random_rois,
                      no_augmentation_sources=no_augmentation_sources, seed=seed,
                      initial_epoch=self.epoch, workers=workers)
        train_batches = MaskRCNNSequence(train_dataset, augmentation=augmentation,
                                         steps_per_epoch=config.STEPS_PER_EPOCH, **common)
        val_batches = None
        if val_dataset is not None and config.VALIDATION_STEPS:
            val_batches = MaskRCNNSequence(val_dataset, steps_per_epoch=config.VALIDATION_STEPS,
                                           **common)
        os.makedirs(self.log_dir, exist_ok=True)
        callbacks = training.log_callbacks(self.log_dir) + [
            training.AtomicCheckpoint(self.checkpoint_path, weights.save_weights,
                                      verbose=verbose),
            training.StopOnNaN(),
        ] + list(custom_callbacks or [])

        log(f"\nStarting at epoch {self.epoch}. LR={learning_rate}\n")
        log(f"Checkpoint Path: {self.checkpoint_path}")
        self.set_trainable(layers, verbose=verbose)
        self.compile(learning_rate, config.LEARNING_MOMENTUM)
        with self._scope():
            history = self.keras_model.fit(
                train_batches, initial_epoch=self.epoch, epochs=epochs,
                steps_per_epoch=config.STEPS_PER_EPOCH, callbacks=callbacks,
                # The sequence shuffles with its own seed; Keras's shuffle would reorder
                # batches with the process-global `random`, which the worker threads
                # reseed per image, so the batch order varied from run to run.
                shuffle=False,
                validation_data=val_batches,
                validation_steps=config.VALIDATION_STEPS if val_batches else None,
                verbose=verbose)
        self.epoch = max(self.epoch, epochs)
        return history

    # ------------------------------------------------------------------ inputs
    def mold_inputs(self, images: Sequence[np.ndarray]):
        """Resize, pad and mean-subtract images into the network's input format.

        Args:
            images: list of [H, W, C] images; they may differ in size.

        Returns:
            molded_images [N, h, w, C] float, image_metas [N, IMAGE_META_SIZE] (see
            compose_image_meta), windows [N, (y1, x1, y2, x2)] int: where each original
            image lies inside its molded image, in pixels.
        """
        config = self.config
        molded_images, image_metas, windows = [], [], []
        for image in images:
            molded, window, scale, _, _ = resize_image(
                image, min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
                max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE)
            molded = mold_image(molded, config)
            image_metas.append(compose_image_meta(
                0, image.shape, molded.shape, window, scale,
                np.zeros([config.NUM_CLASSES], dtype=np.int32)))
            molded_images.append(molded)
            windows.append(window)
        shapes = sorted({m.shape for m in molded_images})
        if len(shapes) > 1:
            raise ValueError(
                f"after resizing, the images have different shapes {shapes}; one batch needs "
                f"one shape (IMAGE_RESIZE_MODE is {config.IMAGE_RESIZE_MODE!r}: use 'square', "
                f"or detect images of one size at a time)")
        return np.stack(molded_images), np.stack(image_metas), np.stack(windows)

    def get_anchors(self, image_shape: Sequence[int]) -> np.ndarray:
        """Anchors of every pyramid level for a molded image shape.

        Also sets ``self.anchors`` to the same anchors in pixels, as matterport's
        notebooks expect.

        Returns:
            [A, (y1, x1, y2, x2)] float32 normalized anchors, levels P2..P6 in order.
        """
        key = tuple(int(d) for d in image_shape[:2])
        # Set here, not in __init__, so that it works on an instance holding only a config.
        if not hasattr(self, "_anchor_cache"):
            self._anchor_cache = {}
        if key not in self._anchor_cache:
            config = self.config
            backbone_shapes = compute_backbone_shapes(config, image_shape)
            pixels = generate_pyramid_anchors(
                config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS, backbone_shapes,
                config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE)
            self._anchor_cache[key] = (pixels, norm_boxes(pixels, key))
        self.anchors, normalized = self._anchor_cache[key]
        return normalized

    # --------------------------------------------------------------- detection
    def detect(self, images: Sequence[np.ndarray], verbose: int = 0) -> list[dict]:
        """Run detection on any number of images.

        Images go through the network BATCH_SIZE at a time; a last, partial batch is
        padded with copies of its last image whose results are dropped.

        Args:
            images: list of [H, W, C] images.
            verbose: 1 to log the inputs.

        Returns:
            One dict per image: rois [N, (y1, x1, y2, x2)] int32 pixels of the original
            image, class_ids [N] int32, scores [N] float32, masks [H, W, N] bool.
        """
        images = list(images)
        if not images:
            return []
        if verbose:
            log(f"Processing {len(images)} images")
            for image in images:
                log("image", image)
        molded_images, image_metas, windows = self.mold_inputs(images)
        if verbose:
            log("molded_images", molded_images)
            log("image_metas", image_metas)
        detections, mrcnn_mask = self._predict_detections(molded_images, image_metas)
        return [self._result(*self.unmold_detections(
                    detections[i], mrcnn_mask[i], image.shape, molded_images[i].shape,
                    windows[i]))
                for i, image in enumerate(images)]

    def detect_molded(self, molded_images: np.ndarray, image_metas: np.ndarray,
                      verbose: int = 0) -> list[dict]:
        """Run detection on images already molded (resized, padded, mean-subtracted).

        Boxes and masks are returned in the molded images' coordinates.

        Args:
            molded_images: [N, h, w, C], e.g. from load_image_gt then mold_image.
            image_metas: [N, IMAGE_META_SIZE].
            verbose: 1 to log the inputs.

        Returns:
            One dict per image, as detect().
        """
        molded_images, image_metas = np.asarray(molded_images), np.asarray(image_metas)
        if molded_images.ndim != 4 or len(image_metas) != len(molded_images):
            raise ValueError(
                f"molded_images must be [N, h, w, C] with one image_metas row per image; got "
                f"molded_images {molded_images.shape} and image_metas {image_metas.shape}")
        if verbose:
            log(f"Processing {len(molded_images)} images")
            log("molded_images", molded_images)
            log("image_metas", image_metas)
        detections, mrcnn_mask = self._predict_detections(molded_images, image_metas)
        shape = molded_images.shape[1:]
        window = np.array([0, 0, shape[0], shape[1]])
        return [self._result(*self.unmold_detections(detections[i], mrcnn_mask[i], shape,
                                                     shape, window))
                for i in range(len(molded_images))]

    @staticmethod
    def _result(rois, class_ids, scores, masks) -> dict:
        return {"rois": rois, "class_ids": class_ids, "scores": scores, "masks": masks}

    def _model_inputs(self, molded_images: np.ndarray, image_metas: np.ndarray):
        """Yield (count, [images, metas, anchors]) per BATCH_SIZE batch, padded."""
        batch = self.config.BATCH_SIZE
        anchors = self.get_anchors(molded_images.shape[1:])
        anchors = np.broadcast_to(anchors, (batch,) + anchors.shape)
        for start in range(0, len(molded_images), batch):
            chunk = [molded_images[start:start + batch], image_metas[start:start + batch]]
            count = len(chunk[0])
            pad = batch - count
            chunk = [np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a
                     for a in chunk]
            yield count, [chunk[0].astype(np.float32), chunk[1].astype(np.float32), anchors]

    def _predict_detections(self, molded_images: np.ndarray, image_metas: np.ndarray
                            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per image: detections [D, 6] and mrcnn_mask [>= its detections, 28, 28, K].

        keras_model runs the mask head on all D = DETECTION_MAX_INSTANCES rows, though
        most are zero padding (at 256 px it is most of the step). Here the graph up to
        the detections runs first, then the mask head only on the rows that hold
        detections in some image of the batch, rounded up to a power of two (so at
        most log2(D) + 2 small programs get compiled). Each row's mask depends on that
        row alone, so the masks are keras_model's.
        """
        prefix = self._detection_prefix(molded_images.shape[1:])
        detections, masks = [], []
        for count, inputs in self._model_inputs(molded_images, image_metas):
            batch_detections, pooled = (np.asarray(o) for o in prefix.predict_on_batch(inputs))
            kept = int((batch_detections[:count, :, 4] != 0).sum(axis=1).max())
            rows = min(1 << max(kept - 1, 0).bit_length(), pooled.shape[1])
            batch_masks = np.asarray(self._mask_head(rows).predict_on_batch(pooled[:, :rows]))
            detections.extend(batch_detections[:count])
            masks.extend(batch_masks[:count])
        return detections, masks

    def _mask_head(self, rows: int) -> keras.Model:
        """keras_model's mask head (the same layers and weights) on [B, rows, 14, 14, C]."""
        key = (id(self.keras_model), rows, bool(self.keras_model.jit_compile))
        if key not in self._mask_heads:
            pooled = self.keras_model.get_layer("roi_align_mask").output
            head = keras.Model(pooled, self.keras_model.get_layer("mrcnn_mask").output)
            x = inputs = keras.Input((rows,) + tuple(pooled.shape[2:]),
                                     batch_size=pooled.shape[0])
            for layer in head.layers[1:]:  # a chain: convolutions, BatchNorms, ReLUs
                x = layer(x)
            self._mask_heads[key] = keras.Model(inputs, x)
            self._mask_heads[key].jit_compile = self.keras_model.jit_compile
        return self._mask_heads[key]

    def unmold_detections(self, detections: np.ndarray, mrcnn_mask: np.ndarray,
                          original_image_shape: Sequence[int], image_shape: Sequence[int],
                          window: Sequence[int]):
        """Turn one image's network outputs into boxes and full-size masks.

        Args:
            detections: [D, (y1, x1, y2, x2, class_id, score)] normalized, zero-padded.
            mrcnn_mask: [D, mask_h, mask_w, NUM_CLASSES].
            original_image_shape: [H, W, C] before resizing.
            image_shape: [h, w, C] after resizing and padding.
            window: [(y1, x1, y2, x2)] pixels of the image inside the padded one.

        Returns:
            boxes [N, (y1, x1, y2, x2)] int32 pixels of the original image, class_ids [N]
            int32, scores [N] float32, masks [H, W, N] bool. Boxes of zero area are dropped.
        """
        # The DetectionLayer pads with zero rows after the real detections.
        zero_ix = np.where(detections[:, 4] == 0)[0]
        n = zero_ix[0] if zero_ix.shape[0] > 0 else detections.shape[0]
        boxes = detections[:n, :4]
        class_ids = detections[:n, 4].astype(np.int32)
        scores = detections[:n, 5]
        masks = mrcnn_mask[np.arange(n), :, :, class_ids]

        # Map the boxes from the padded image to the original one.
        wy1, wx1, wy2, wx2 = norm_boxes(np.asarray(window), image_shape[:2])
        shift = np.array([wy1, wx1, wy1, wx1])
        wh, ww = wy2 - wy1, wx2 - wx1
        scale = np.array([wh, ww, wh, ww])
        boxes = denorm_boxes(np.divide(boxes - shift, scale), original_image_shape[:2])

        keep = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0
        if not keep.all():
            boxes, class_ids, scores, masks = (boxes[keep], class_ids[keep], scores[keep],
                                               masks[keep])
            n = len(boxes)
        if n:
            full_masks = unmold_masks(masks, boxes, original_image_shape)
        else:  # matterport's empty result is float64
            full_masks = np.empty(tuple(original_image_shape[:2]) + (0,))
        return boxes, class_ids, scores, full_masks

    # -------------------------------------------------------------- inspection
    def ancestor(self, tensor, name: str, checked=None):
        """Find the tensor produced by the layer named `name` upstream of `tensor`.

        Args:
            tensor: a Keras tensor of keras_model.
            name: layer name, e.g. "ROI"; a regular expression matched in full.
            checked: tensors already searched (for the recursion).

        Returns:
            The Keras tensor output by that layer, or None when it is not an ancestor.
        """
        checked = checked if checked is not None else []
        if any(t is tensor for t in checked):
            return None
        checked.append(tensor)
        operation, node_index, _ = tensor._keras_history
        if re.fullmatch(name, operation.name):
            return tensor
        node = operation._inbound_nodes[node_index]
        for parent in node.input_tensors:
            found = self.ancestor(parent, name, checked)
            if found is not None:
                return found
        return None

    def find_trainable_layer(self, layer):
        """Matterport compatibility: the layer itself (there are no TimeDistributed wrappers)."""
        return layer

    def get_trainable_layers(self) -> list:
        """Layers that own weights, as matterport's method."""
        return [layer for layer in self.keras_model.layers if layer.weights]

    def run_graph(self, images: Sequence[np.ndarray], outputs, image_metas=None) -> OrderedDict:
        """Run the graph up to chosen tensors and return their values.

        Args:
            images: list of images, molded like detect() does.
            outputs: list of (name, tensor) pairs, where tensor is a Keras tensor of
                keras_model (e.g. ``model.keras_model.get_layer("ROI").output``) or the
                name of a layer whose output to fetch.
            image_metas: [N, IMAGE_META_SIZE] to use instead of those of mold_inputs.

        Returns:
            OrderedDict name -> numpy array [N, ...], one row per image.
        """
        outputs = OrderedDict(outputs)
        tensors = []
        for key, value in outputs.items():
            if isinstance(value, str):
                value = self.keras_model.get_layer(value).output
            if value is None:
                raise ValueError(f"run_graph: output {key!r} is None")
            tensors.append(value)
        molded_images, metas, _ = self.mold_inputs(images)
        built = tuple(self.keras_model.inputs[0].shape[1:3])
        if molded_images.shape[1:3] != built:
            raise ValueError(f"run_graph reads tensors of keras_model, built for {built} "
                             f"images; these mold to {molded_images.shape[1:3]}")
        sub_model = keras.Model(self.keras_model.inputs, tensors)
        if image_metas is not None:
            metas = np.asarray(image_metas)
        parts = []
        for count, inputs in self._model_inputs(molded_images, metas):
            values = sub_model.predict_on_batch(inputs)
            values = values if isinstance(values, (list, tuple)) else [values]
            parts.append([np.asarray(v)[:count] for v in values])
        results = OrderedDict(
            (key, np.concatenate(chunks)) for key, chunks in zip(outputs, zip(*parts)))
        for key, value in results.items():
            log(key, value)
        return results
