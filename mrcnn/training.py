"""The parts of ``MaskRCNN.train()`` that are not graph code.

Layer selection by matterport's regexes, the optimizer, log-directory and checkpoint
naming, finding the last checkpoint and the epoch to resume from, the per-epoch loss logs
(CSV, and TensorBoard where TensorFlow is installed), and two callbacks: an atomic per-epoch
checkpoint and a stop on a non-finite loss.

Paths follow matterport::

    {model_dir}/{name}{YYYYmmddTHHMM}/mask_rcnn_{name}_{epoch:04d}.h5

with ``name`` the lower-cased ``config.NAME`` and ``epoch`` 1-based (the number of
epochs completed when the file was written).
"""
from __future__ import annotations

import datetime
import importlib.util
import math
import os
import re
import warnings
from typing import Callable, Iterable

import keras

from mrcnn.files import atomic_output

# Matterport's train(layers=...) shortcuts, matched against layer names with re.fullmatch.
LAYER_REGEX = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}

# Matterport's set_log_dir regex: a log dir named {name}{YYYYmmddTHHMM} holding
# mask_rcnn_{name}_{epoch:04d}.h5. re.match anchors only the start, as there.
_CHECKPOINT_PATH = re.compile(
    r".*[/\\][\w-]+(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})[/\\]mask\_rcnn\_[\w-]+(\d{4})\.h5")


def resolve_layer_regex(layers: str) -> str:
    """The regex for a ``train(layers=...)`` value: a LAYER_REGEX key or a regex.

    Raises:
        ValueError: `layers` is not a string or not a valid regular expression.
    """
    if not isinstance(layers, str):
        raise ValueError(f"layers must be one of {sorted(LAYER_REGEX)} or a regex string, "
                         f"got {layers!r}")
    regex = LAYER_REGEX.get(layers, layers)
    try:
        re.compile(regex)
    except re.error as error:
        raise ValueError(f"layers={layers!r} is not a valid regular expression: {error}") \
            from error
    return regex


def select_layer_names(layer_names: Iterable[str], layers: str) -> list[str]:
    """The names that ``layers`` (a LAYER_REGEX key or a regex) selects, in input order.

    A name ``outer/inner`` (a layer nested in a sub-model, as matterport's reference
    lists ``rpn_model/rpn_conv_shared``) is matched on ``inner``, as matterport's
    set_trainable matches the nested layer's own name.
    """
    pattern = re.compile(resolve_layer_regex(layers))
    return [name for name in layer_names if pattern.fullmatch(name.rsplit("/", 1)[-1])]


def set_trainable(model: keras.Model, layers: str) -> list[str]:
    """Make trainable exactly the layers with weights whose name ``layers`` selects.

    Nested models are entered rather than matched (their own name does not count);
    weightless layers are left as they are. As in matterport, a selected BatchNorm
    layer gets trainable gamma and beta; whether it normalises with batch statistics is
    the model's TRAIN_BN choice, not this function's.

    Args:
        model: the Keras model (MaskRCNN.keras_model).
        layers: a LAYER_REGEX key ("heads", "3+", "4+", "5+", "all") or a regex.

    Returns:
        The selected layer names, nested ones as ``outer/inner``, in model order.
    """
    pattern = re.compile(resolve_layer_regex(layers))
    selected: list[str] = []

    def visit(container: keras.Model, prefix: str) -> None:
        # A Keras 3 container that is not trainable hides its children's weights, and
        # setting it trainable resets every child: set it first, then each child.
        container.trainable = True
        for layer in container.layers:
            if isinstance(layer, keras.Model):
                visit(layer, f"{prefix}{layer.name}/")
            elif layer.weights:
                chosen = pattern.fullmatch(layer.name) is not None
                layer.trainable = chosen
                if chosen:
                    selected.append(prefix + layer.name)

    visit(model, "")
    return selected


def build_optimizer(learning_rate: float, momentum: float,
                    gradient_clip_norm: float | None) -> keras.optimizers.SGD:
    """Matterport's optimizer: SGD with momentum, gradients clipped by GRADIENT_CLIP_NORM.

    Keras 2, which matterport ran on, scaled ALL gradients by one factor when their
    joint L2 norm passed ``clipnorm``; Keras 3's ``clipnorm`` clips each variable on its
    own, so the Keras 3 equivalent is ``global_clipnorm``.

    Args:
        learning_rate: LEARNING_RATE (or train()'s learning_rate).
        momentum: LEARNING_MOMENTUM.
        gradient_clip_norm: GRADIENT_CLIP_NORM; None or 0 disables clipping.
    """
    clip = float(gradient_clip_norm) if gradient_clip_norm else None
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum,
                                global_clipnorm=clip)


def log_dir_path(model_dir: str, name: str, now: datetime.datetime) -> str:
    """``{model_dir}/{name}{YYYYmmddTHHMM}``, name lower-cased as matterport does."""
    return os.path.join(model_dir, f"{name.lower()}{now:%Y%m%dT%H%M}")


def checkpoint_path(log_dir: str, name: str, epoch: int | None = None) -> str:
    """``{log_dir}/mask_rcnn_{name}_{epoch:04d}.h5``.

    With ``epoch=None`` the result keeps the ``{epoch:04d}`` field for ``str.format``,
    as matterport's ``checkpoint_path`` template does.
    """
    template = os.path.join(log_dir, f"mask_rcnn_{name.lower()}_" + "{epoch:04d}.h5")
    return template if epoch is None else template.format(epoch=epoch)


def parse_checkpoint_path(path: str | os.PathLike) -> tuple[datetime.datetime, int] | None:
    """The log-dir time and the epoch to resume from, read from a checkpoint path.

    Uses matterport's regex: ``.../{name}YYYYmmddTHHMM/mask_rcnn_{name}_NNNN.h5``. The
    file's number is the count of epochs done, which is also the 0-based index of the
    next epoch: Keras's ``initial_epoch``.

    Returns:
        (datetime of the log dir, epoch), or None when the path does not follow the
        pattern (matterport then starts a new log dir at epoch 0).
    """
    match = _CHECKPOINT_PATH.match(os.fspath(path))
    if match is None:
        return None
    year, month, day, hour, minute, epoch = (int(g) for g in match.groups())
    return datetime.datetime(year, month, day, hour, minute), epoch


def find_last(model_dir: str, name: str) -> str:
    """The last checkpoint of the newest log dir of ``name`` under ``model_dir``.

    Log dirs sort by their timestamp and checkpoints by epoch. As in matterport, a newest
    log dir without checkpoints is an error; older dirs are not searched. Only names
    that follow the patterns count, so a half-written ``.tmp-*`` file or a log dir of a
    config whose name merely starts the same way is never picked.

    Raises:
        FileNotFoundError: naming the directory that is missing or holds nothing.
    """
    key = name.lower()
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"model directory {model_dir!r} does not exist")
    dir_pattern = re.compile(re.escape(key) + r"\d{8}T\d{4}")
    log_dirs = sorted(d for d in os.listdir(model_dir)
                      if dir_pattern.fullmatch(d) and os.path.isdir(os.path.join(model_dir, d)))
    if not log_dirs:
        raise FileNotFoundError(
            f"no log directory {key}YYYYmmddTHHMM for NAME={name!r} in {model_dir!r}")
    log_dir = os.path.join(model_dir, log_dirs[-1])
    file_pattern = re.compile(r"mask\_rcnn\_" + re.escape(key) + r"\_(\d{4,})\.h5")
    epochs = {}
    for file_name in os.listdir(log_dir):
        match = file_pattern.fullmatch(file_name)
        if match:
            epochs[int(match.group(1))] = file_name
    if not epochs:
        raise FileNotFoundError(
            f"no checkpoint mask_rcnn_{key}_NNNN.h5 in the newest log directory {log_dir!r}")
    return os.path.join(log_dir, epochs[max(epochs)])


LOSS_LOG = "losses.csv"


def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported (Keras's TensorBoard callback writes with it)."""
    return importlib.util.find_spec("tensorflow") is not None


def log_callbacks(log_dir: str) -> list[keras.callbacks.Callback]:
    """Callbacks writing the per-epoch losses under `log_dir`.

    ``losses.csv`` (one row per epoch, the 0-based epoch then every loss) is appended to,
    so a resumed run continues the same file. TensorBoard event files are added where
    TensorFlow is installed: Keras writes them with ``tf.summary`` even on the JAX
    backend, and a JAX-only machine would otherwise fail at the first epoch.
    """
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.CSVLogger(os.path.join(log_dir, LOSS_LOG), append=True)]
    if tensorflow_available():
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, histogram_freq=0,
                                                     write_graph=False))
    else:
        warnings.warn(f"TensorFlow is not installed: no TensorBoard logs; the losses go to "
                      f"{os.path.join(log_dir, LOSS_LOG)}", stacklevel=2)
    return callbacks


class AtomicCheckpoint(keras.callbacks.Callback):
    """Writes the weights after every epoch; a reader never sees a partial file.

    The file is written beside its target under a hidden temporary name, flushed to
    disk, then renamed over the target (mrcnn.files.atomic_output).

    Args:
        filepath: template with an ``{epoch:04d}`` field, e.g. from ``checkpoint_path``;
            the epoch written is 1-based (epochs completed), as Keras's ModelCheckpoint.
        save_fn: ``save_fn(model, path)`` writes the weights file, e.g. the legacy HDF5
            writer of mrcnn.weights.
        verbose: 1 prints each path written.
    """

    def __init__(self, filepath: str, save_fn: Callable[[keras.Model, str], None],
                 verbose: int = 0):
        super().__init__()
        if "{epoch" not in filepath:
            raise ValueError(f"filepath {filepath!r} has no {{epoch}} field")
        self.filepath = filepath
        self.save_fn = save_fn
        self.verbose = verbose

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        path = self.filepath.format(epoch=epoch + 1)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with atomic_output(path) as temporary:
            self.save_fn(self.model, str(temporary))
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: saved weights to {path}")


class NaNLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first batch whose logged losses are not finite.

    Raises NaNLossError naming the epoch and step (both 1-based, as the progress bar
    shows them) and every non-finite value, so that no checkpoint of the broken weights
    is written and a multi-phase schedule does not carry on from them.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        bad = {}
        for key, value in (logs or {}).items():
            if "loss" not in key:
                continue
            number = float(keras.ops.convert_to_numpy(value))
            if not math.isfinite(number):
                bad[key] = number
        if bad:
            self.model.stop_training = True
            listed = ", ".join(f"{key}={value}" for key, value in sorted(bad.items()))
            raise NaNLossError(
                f"non-finite loss at epoch {self._epoch + 1}, step {batch + 1}: {listed}. "
                "Training stopped; lower LEARNING_RATE, check GRADIENT_CLIP_NORM, or look "
                "for bad boxes or masks in the data.")
