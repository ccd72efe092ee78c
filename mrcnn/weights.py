"""Weight files: matterport's legacy Keras-2 HDF5 layout, Keras 3 ``.weights.h5``, and
the explicit download of the published COCO and ImageNet files.

Legacy layout (what ``mask_rcnn_coco.h5`` and Keras 2's ``save_weights`` use)::

    /                      attrs layer_names [every layer, in model order],
                                 backend, keras_version
    /<layer>               attr  weight_names ["<layer>/kernel:0", "<layer>/bias:0", ...]
                                 (an empty float64 array for a layer without weights)
    /<layer>/<layer>/kernel:0    one dataset per weight name
    /rpn_model             a nested Model: its weights are named after its own layers,
                                 "rpn_conv_shared/kernel:0" ... "rpn_bbox_pred/bias:0"

Weight shapes are Keras's: Conv2D [kh, kw, in, out], Conv2DTranspose [kh, kw, out, in],
Dense [in, out], BatchNorm gamma, beta, moving_mean, moving_variance. Keras 3 uses the same
layouts, so values are copied without any transpose.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import urllib.request
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import h5py
import numpy as np
# keras is imported inside the functions that need a model: mrcnn.utils re-exports the
# download functions below, and data-loading code should not pay for a backend import.

from mrcnn.files import atomic_output

KERAS3_SUFFIX = ".weights.h5"
_EMPTY_WEIGHT_NAMES = np.zeros((0,), dtype=np.float64)  # what Keras 2 wrote for no weights


@dataclasses.dataclass
class LoadReport:
    """What `load_weights` did, by top-level layer name.

    Attributes:
        loaded: layers whose weights were set from the file.
        excluded: layers left untouched because `exclude` named them.
        skipped: layers left untouched because their shapes differ (skip_mismatch=True).
        missing: layers with weights that the file does not have (by name only).
        unused: layers with weights in the file that the model does not have (by name only).
    """

    loaded: list[str] = dataclasses.field(default_factory=list)
    excluded: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    unused: list[str] = dataclasses.field(default_factory=list)


# --------------------------------------------------------------------------------------
# Loading

def load_weights(model: keras.Model, filepath: str | os.PathLike, by_name: bool = False,
                 exclude: Iterable[str] | None = None, skip_mismatch: bool = False) -> LoadReport:
    """Load a legacy Keras-2 HDF5 weights file (matterport's) or a Keras 3 ``.weights.h5``.

    Legacy files, by_name=True: each top-level layer of the model takes the file group of
    the same name. Layers of the model that the file lacks keep their values (a warning
    gives the count); layers of the file that the model lacks are ignored, as matterport
    did, so a backbone-only file (ImageNet ResNet) loads into the full model.
    Legacy files, by_name=False: the layers with weights are paired in order with the
    file's layers with weights, as Keras 2 did; the two counts must be equal.
    Within a layer, weights are matched by weight name when the names agree (a nested
    Model such as rpn_model names them after its own layers, e.g.
    "rpn_conv_shared/kernel:0"), otherwise in order.

    Legacy files: nothing is assigned until every shape has been checked, so a failed
    load leaves the model unchanged.

    Keras 3 files (the name ends in ".weights.h5") are read by Keras itself, which matches
    layers by their position in the model, whatever `by_name` says, and may have set
    some layers before it reports a mismatch.

    Args:
        model: the Keras model (MaskRCNN.keras_model).
        filepath: the weights file.
        by_name: match layers by name (see above) instead of by order.
        exclude: names of top-level layers to leave untouched, e.g. the class-specific
            heads ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
            when the class count differs.
        skip_mismatch: skip layers whose weight shapes differ from the file (with a
            warning listing them) instead of raising.

    Returns:
        A LoadReport with the layer names loaded, excluded, skipped, missing and unused.

    Raises:
        TypeError: `model` is not a keras.Model, or `exclude` is a single string.
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a readable weights file, the layer counts differ
            (by_name=False), no layer name is shared (by_name=True), or a shape differs
            (naming layer, weight and both shapes).
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"load_weights needs a keras.Model (MaskRCNN.keras_model), got "
                        f"{type(model).__name__}")
    if isinstance(exclude, str):
        raise TypeError(f"exclude must be a list of layer names, got the string {exclude!r}")
    path = Path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    exclude = set(exclude or ())
    unknown = sorted(exclude - {layer.name for layer in model.layers})
    if unknown:
        warnings.warn(f"exclude names layers that the model does not have: {unknown}",
                      stacklevel=2)
    if path.name.endswith(KERAS3_SUFFIX):
        return _load_keras3(model, path, exclude, skip_mismatch)
    return _load_legacy(model, path, by_name, exclude, skip_mismatch)


def _load_keras3(model: keras.Model, path: Path, exclude: set[str],
                 skip_mismatch: bool) -> LoadReport:
    import keras

    kept = {layer.name: [keras.ops.convert_to_numpy(v) for v in layer.weights]
            for layer in model.layers if layer.name in exclude}
    try:
        # The base-class method: a subclass may route its own load_weights here.
        keras.Model.load_weights(model, str(path), skip_mismatch=skip_mismatch)
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 file (not HDF5, or truncated): "
                         f"{exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{path} does not fit the model: {exc}") from exc
    for layer in model.layers:
        for variable, value in zip(layer.weights, kept.get(layer.name, ())):
            variable.assign(value)
    return LoadReport(
        loaded=[l.name for l in model.layers if l.weights and l.name not in exclude],
        excluded=[l.name for l in model.layers if l.weights and l.name in exclude])


@contextlib.contextmanager
def _open_legacy(path: Path) -> Iterator[h5py.Group]:
    """Open a legacy file and yield the group holding `layer_names`."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 file (not HDF5, or truncated): "
                         f"{exc}") from exc
    with f:
        # A whole-model file from Keras 2's model.save() keeps its weights one level down.
        root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        if "layer_names" not in root.attrs:
            hint = (" It looks like a Keras 3 weights file: give it a name ending in "
                    f"'{KERAS3_SUFFIX}'." if "vars" in f and "layers" in f else "")
            raise ValueError(f"{path} has no 'layer_names' attribute, so it is not a Keras "
                             f"HDF5 weights file.{hint}")
        yield root


def _str_list(attrs: h5py.AttributeManager, key: str) -> list[str]:
    """A list-of-names attribute as str, whichever string type wrote it (Keras 2.0 wrote
    fixed-length bytes, later versions variable-length strings)."""
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in attrs.get(key, [])]


def _legacy_weights(layer: keras.layers.Layer) -> list[tuple[str, keras.Variable]]:
    """[(Keras-2 weight name, variable)] of one top-level layer, in `layer.weights` order.

    Keras 2 named a variable after the layer that created it; a nested Model's variables
    therefore carry the names of its own layers, not of the Model.
    """
    import keras

    if isinstance(layer, keras.Model):
        return [pair for sub in layer.layers for pair in _legacy_weights(sub)]
    return [(f"{layer.name}/{v.name}:0", v) for v in layer.weights]


def _weighted_file_layers(root: h5py.Group, path: Path) -> dict[str, h5py.Group]:
    """{layer name: group} of the file's layers with weights, in file order."""
    out = {}
    for name in _str_list(root.attrs, "layer_names"):
        if name not in root:
            raise ValueError(f"{path} lists layer {name!r} in layer_names but has no group "
                             "for it (damaged file?)")
        if _str_list(root[name].attrs, "weight_names"):
            out[name] = root[name]
    return out


def _match_layer(layer: keras.layers.Layer, group: h5py.Group, path: Path
                 ) -> tuple[list[tuple[keras.Variable, np.ndarray]], list[str]]:
    """Pair a layer's variables with the datasets of one file group.

    Returns:
        ([(variable, value)], []) when everything fits, or ([], [problem, ...]).
    """
    named = _legacy_weights(layer)
    saved = _str_list(group.attrs, "weight_names")
    file_layer = group.name.rsplit("/", 1)[-1]
    if len(saved) != len(named):
        return [], [f"layer {layer.name!r} has {len(named)} weights, file {path} has "
                    f"{len(saved)} for layer {file_layer!r}"]
    if set(saved) == {name for name, _ in named}:
        order = [name for name, _ in named]
    else:  # older files may carry other variable names; Keras 2 then went by position
        order = saved
    pairs, problems = [], []
    for (_, variable), name in zip(named, order):
        if name not in group:
            raise ValueError(f"{path}: layer {file_layer!r} lists weight {name!r} but has no "
                             "dataset for it (damaged file?)")
        dataset = group[name]
        if tuple(dataset.shape) != tuple(variable.shape):
            problems.append(f"layer {layer.name!r} weight {name!r}: model expects shape "
                            f"{tuple(variable.shape)}, file {path} has {tuple(dataset.shape)}")
        else:
            pairs.append((variable, dataset))
    if problems:
        return [], problems
    try:
        return [(variable, dataset[()]) for variable, dataset in pairs], []
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the weights of layer {file_layer!r} "
                         f"(damaged file?): {exc}") from exc


def _load_legacy(model: keras.Model, path: Path, by_name: bool, exclude: set[str],
                 skip_mismatch: bool) -> LoadReport:
    weighted = [layer for layer in model.layers if layer.weights]
    report = LoadReport(excluded=[layer.name for layer in weighted if layer.name in exclude])
    with _open_legacy(path) as root:
        in_file = _weighted_file_layers(root, path)
        if by_name:
            pairs = [(layer, in_file[layer.name]) for layer in weighted
                     if layer.name in in_file]
            model_names = {layer.name for layer in weighted}
            report.missing = [layer.name for layer in weighted
                              if layer.name not in in_file and layer.name not in exclude]
            report.unused = [name for name in in_file if name not in model_names]
            if in_file and not pairs:
                # Loading nothing would leave a random model that looks pretrained.
                raise ValueError(
                    f"{path}: none of its {len(in_file)} layers with weights is named like "
                    f"a layer of the model (file: {list(in_file)[:5]}, model: "
                    f"{sorted(model_names)[:5]}); is it a weights file for this model?")
        else:
            if len(in_file) != len(weighted):
                raise ValueError(f"{path} has {len(in_file)} layers with weights, the model "
                                 f"has {len(weighted)}; load by name (by_name=True) to match "
                                 "the layers that both have")
            pairs = list(zip(weighted, in_file.values()))
        assignments, problems = [], []
        for layer, group in pairs:
            if layer.name in exclude:
                continue
            values, layer_problems = _match_layer(layer, group, path)
            if layer_problems:
                report.skipped.append(layer.name)
                problems += layer_problems
            else:
                assignments += values
                report.loaded.append(layer.name)
    if problems and not skip_mismatch:
        raise ValueError("weights do not fit the model (pass exclude=[...] or "
                         "skip_mismatch=True to leave these layers untouched):\n  "
                         + "\n  ".join(problems))
    if problems:
        warnings.warn(f"skipped {len(report.skipped)} layers whose weights do not fit:\n  "
                      + "\n  ".join(problems), stacklevel=3)
    if report.missing:
        warnings.warn(f"{len(report.missing)} layers with weights are not in {path} and "
                      f"keep their values: {report.missing[:10]}"
                      f"{' ...' if len(report.missing) > 10 else ''}", stacklevel=3)
    for variable, value in assignments:
        variable.assign(value)
    return report


# --------------------------------------------------------------------------------------
# Saving

def _write_names(attrs: h5py.AttributeManager, key: str, names: list[str]) -> None:
    encoding = "ascii" if all(name.isascii() for name in names) else "utf-8"
    attrs.create(key, np.array([n.encode(encoding) for n in names], dtype=object),
                 dtype=h5py.string_dtype(encoding))


def _write_legacy(model: keras.Model, path: Path) -> None:
    import keras

    with h5py.File(path, "w") as f:
        _write_names(f.attrs, "layer_names", [layer.name for layer in model.layers])
        for key, value in (("backend", keras.backend.backend()),
                           ("keras_version", keras.__version__)):
            f.attrs.create(key, value.encode("ascii"), dtype=h5py.string_dtype("ascii"))
        for layer in model.layers:
            group = f.create_group(layer.name)
            named = _legacy_weights(layer)
            names = [name for name, _ in named]
            if len(set(names)) != len(names):
                raise ValueError(f"layer {layer.name!r} has several weights with the same "
                                 f"name {names}; the legacy layout cannot hold them")
            if names:
                _write_names(group.attrs, "weight_names", names)
            else:
                group.attrs.create("weight_names", _EMPTY_WEIGHT_NAMES)
            for name, variable in named:
                group.create_dataset(name, data=keras.ops.convert_to_numpy(variable))


def save_weights(model: keras.Model, filepath: str | os.PathLike) -> Path:
    """Write the model's weights atomically: the file is complete or untouched.

    A name ending in ".weights.h5" gets Keras 3's format; any other name gets the legacy
    Keras-2 layout of the module docstring, which matterport's code and Keras 2 read
    (root attrs layer_names with every layer, backend and keras_version; one group per
    layer with weight_names; the nested rpn_model group).

    Returns:
        The path written.

    Raises:
        FileNotFoundError: the directory does not exist.
        ValueError: a layer has two weights with the same name (legacy layout only).
    """
    import keras

    path = Path(filepath)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save weights to {path}: directory {path.parent} "
                                "does not exist")
    keras3 = path.name.endswith(KERAS3_SUFFIX)
    with atomic_output(path) as tmp:
        if keras3:
            keras.Model.save_weights(model, str(tmp))
        else:
            _write_legacy(model, tmp)
    return path


# --------------------------------------------------------------------------------------
# Published weights, downloaded only when asked

@dataclasses.dataclass(frozen=True)
class PretrainedFile:
    """A published weights file and what is known to verify it.

    GitHub serves no checksum for release assets: a file without a published hash is
    verified by its size and by opening it as a Keras HDF5 weights file.
    """

    url: str
    filename: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None


COCO_WEIGHTS = PretrainedFile(
    url="https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5",
    filename="mask_rcnn_coco.h5",
    size=257_557_808)
# The md5 that Keras published for this file (keras_applications and matterport's
# get_imagenet_weights check the same value).
IMAGENET_WEIGHTS = PretrainedFile(
    url="https://github.com/fchollet/deep-learning-models/releases/download/v0.2/"
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    filename="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    md5="a268eb855778b3df3c7506639542a6af")
COCO_MODEL_URL = COCO_WEIGHTS.url  # matterport's mrcnn.utils constant


def _verify_download(spec: PretrainedFile, tmp: Path, digests: dict[str, str]) -> None:
    size = tmp.stat().st_size
    if spec.size is not None and size != spec.size:
        raise ValueError(f"download of {spec.url} is {size} bytes, expected {spec.size}")
    for algorithm in ("md5", "sha256"):
        expected = getattr(spec, algorithm)
        if expected is not None and digests[algorithm] != expected:
            raise ValueError(f"download of {spec.url} has {algorithm} {digests[algorithm]}, "
                             f"expected {expected}")
    with _open_legacy(tmp):
        pass


def download_weights(spec: PretrainedFile, dest: str | os.PathLike, verbose: int = 1) -> Path:
    """Download `spec` to `dest` (parent directories created), verified and atomically.

    Raises:
        RuntimeError: the URL cannot be reached (offline); says how to fetch it by hand.
        ValueError: the download has the wrong size or hash, or is not a weights file;
            `dest` is then left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if verbose > 0:
        print(f"Downloading {spec.url} to {dest} ...")
    digests = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    try:
        with urllib.request.urlopen(spec.url, timeout=60) as response, \
                atomic_output(dest) as tmp:
            with open(tmp, "wb") as out:
                while chunk := response.read(1 << 22):
                    out.write(chunk)
                    for digest in digests.values():
                        digest.update(chunk)
            _verify_download(spec, tmp, {k: d.hexdigest() for k, d in digests.items()})
    except OSError as exc:  # URLError, timeouts and dropped connections are all OSErrors
        raise RuntimeError(
            f"could not download {spec.url} ({exc}). If this machine is offline, download "
            f"that URL on another machine (e.g. `curl -L -o {spec.filename} {spec.url}`) "
            f"and copy the file to {dest}") from exc
    if verbose > 0:
        print(f"... done: {dest}")
    return dest


def download_trained_weights(coco_model_path: str | os.PathLike, verbose: int = 1) -> Path:
    """Download matterport's COCO-trained weights (mask_rcnn_coco.h5) to `coco_model_path`.

    Matterport's mrcnn.utils function; see `download_weights` for the errors.
    """
    return download_weights(COCO_WEIGHTS, coco_model_path, verbose=verbose)


def get_imagenet_weights(cache_dir: str | os.PathLike | None = None, verbose: int = 1) -> Path:
    """Path of the ResNet-50 ImageNet "notop" weights, downloaded on first use.

    Args:
        cache_dir: where the file lives; by default Keras's cache, $KERAS_HOME/models or
            ~/.keras/models, where matterport's Keras 2 download put it.

    Returns:
        The path of the file, to load with by_name=True.
    """
    if cache_dir is None:
        cache_dir = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    path = Path(cache_dir).expanduser() / IMAGENET_WEIGHTS.filename
    # Downloads are atomic, so an existing file is a complete one.
    if path.is_file():
        return path
    return download_weights(IMAGENET_WEIGHTS, path, verbose=verbose)
