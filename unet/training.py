"""Training with checkpoints in a run folder, resume, and reloading a trained model.

A run folder holds:
    run.json          how to rebuild the model (input_shape, base_filters, dropout,
                      input_normalization, encoder_batchnorm, dtype_policy) plus any
                      context the caller adds
    best.weights.h5   weights of the epoch with the best `monitor` (HDF5)
                      (every file here is written atomically: a temporary file renamed)
    last.weights.h5   weights after the latest epoch, for resuming
    state.json        {"epoch": epochs done, "best": best monitor value so far}
    history.csv       one row per epoch (appended across resumes)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import keras

from mrcnn.files import atomic_output
from unet.model import UNet

RUN_FILE, STATE_FILE = "run.json", "state.json"
BEST_WEIGHTS, LAST_WEIGHTS = "best.weights.h5", "last.weights.h5"
# Model settings added after the first runs were written, with the value those runs had.
_EARLIER_RUNS = {"encoder_batchnorm": False, "dtype_policy": "float32"}


def describe(model: keras.Model) -> dict:
    """What `build_unet` needs to rebuild `model`, read from the model's own layers."""
    names = {layer.name for layer in model.layers}
    return {
        "input_shape": list(model.input_shape[1:]),
        "base_filters": model.get_layer("block1_conv1").filters,
        "dropout": (model.get_layer("decoder1_dropout").rate
                    if "decoder1_dropout" in names else 0.0),
        "input_normalization": "imagenet" if "imagenet_normalization" in names else None,
        "encoder_batchnorm": "block1_conv1_bn" in names,
        "dtype_policy": model.get_layer("block1_conv1").dtype_policy.name,
    }


def _recorded(info: dict, key: str):
    return info.get(key, _EARLIER_RUNS.get(key))


class _Checkpoints(keras.callbacks.Callback):
    """After each epoch: the best weights when `monitor` improved, the last weights, then
    state.json. Each file is written atomically, so a run killed mid-write keeps the
    previous complete files and resumes from them."""

    def __init__(self, run_dir: Path, monitor: str, best: float | None):
        super().__init__()
        self.run_dir, self.monitor, self.best = run_dir, monitor, best

    def _save_weights(self, name: str) -> None:
        with atomic_output(self.run_dir / name) as temporary:
            self.model.save_weights(str(temporary))

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best = float(value)
            self._save_weights(BEST_WEIGHTS)
        self._save_weights(LAST_WEIGHTS)
        # state.json is written last, so it never points past the saved weights.
        with atomic_output(self.run_dir / STATE_FILE) as temporary:
            temporary.write_text(json.dumps({"epoch": epoch + 1, "best": self.best}))


def cosine_learning_rate(base: float, epochs: int, epoch: int) -> float:
    """Half-cosine decay from `base` at epoch 0 towards 0 after `epochs` epochs.

    A function of the epoch number alone, so a resumed run continues the same curve.
    """
    return base * 0.5 * (1.0 + math.cos(math.pi * min(epoch, epochs) / epochs))


def cosine_schedule(base: float, epochs: int) -> keras.callbacks.LearningRateScheduler:
    """A callback setting the learning rate of each epoch by `cosine_learning_rate`."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, _lr: cosine_learning_rate(base, epochs, epoch))


def fit(model: keras.Model, train_data, val_data, run_dir: str | Path, epochs: int,
        run_info: dict | None = None, monitor: str = "val_mean_iou", resume: bool = True,
        verbose: int | str = "auto", callbacks: list | None = None) -> keras.callbacks.History:
    """Train up to `epochs` (cumulative, as matterport's train), checkpointing in run_dir.

    Args:
        model: a compiled U-Net (UNet.get_model).
        train_data, val_data: PyDatasets such as `unet.data.BinaryMaskSequence`.
        run_dir: folder for the files listed in the module docstring.
        epochs: total epochs; a resumed run continues from state.json's epoch.
        run_info: extra JSON-serialisable context for run.json (dataset, split ids).
        monitor: a metric to maximise; the best epoch's weights go to best.weights.h5.
        resume: continue from last.weights.h5 (weights and Adam moments) when
            state.json exists, at the model's compiled learning rate; run.json keeps
            its earlier entries.
        callbacks: more Keras callbacks.

    Returns:
        The History of this call's epochs.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / STATE_FILE
    initial_epoch, best = 0, None
    info = {}
    if resume and state_path.is_file():
        info = json.loads((run_dir / RUN_FILE).read_text())
        changed = {k: {"run": _recorded(info, k), "model": v}
                   for k, v in describe(model).items() if _recorded(info, k) != v}
        if changed:
            raise ValueError(f"cannot resume {run_dir}: the model differs from the one "
                             f"it was trained with: {changed}")
        state = json.loads(state_path.read_text())
        initial_epoch, best = int(state["epoch"]), state["best"]
        # .weights.h5 files carry the optimizer's variables too; they load only into
        # a built optimizer, which brings Adam's moments back with the weights.
        model.optimizer.build(model.trainable_variables)
        learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        model.load_weights(str(run_dir / LAST_WEIGHTS))
        # The file restored the old run's learning rate too; this call's compile wins.
        model.optimizer.learning_rate = learning_rate
    info.update({**describe(model), **(run_info or {})})
    with atomic_output(run_dir / RUN_FILE) as temporary:
        temporary.write_text(json.dumps(info, indent=2))
    return model.fit(
        train_data, validation_data=val_data, epochs=epochs, initial_epoch=initial_epoch,
        verbose=verbose,
        # The sequence reshuffles itself with its seed; Keras's shuffle would reorder the
        # batches again with the process-global `random`.
        shuffle=False,
        # The caller's callbacks before the CSV log, so that what they add to the logs
        # (LearningRateScheduler's learning_rate) is in its rows.
        callbacks=[_Checkpoints(run_dir, monitor, best), *(callbacks or []),
                   keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True)])


def load_run(run_dir: str | Path, weights: str = BEST_WEIGHTS) -> keras.Model:
    """Rebuild the model recorded in run_dir/run.json and load its weights.

    Args:
        run_dir: a folder written by `fit`.
        weights: file name inside run_dir (best or last weights).
    """
    run_dir = Path(run_dir)
    run_file, weights_file = run_dir / RUN_FILE, run_dir / weights
    for path in (run_file, weights_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; is {run_dir} a U-Net run folder?")
    info = json.loads(run_file.read_text())
    model = UNet(base_filters=info["base_filters"], dropout=info["dropout"],
                 input_normalization=info["input_normalization"],
                 encoder_batchnorm=_recorded(info, "encoder_batchnorm"),
                 dtype_policy=_recorded(info, "dtype_policy")).get_model(info["input_shape"])
    model.optimizer.build(model.trainable_variables)  # the file holds Adam's state too
    model.load_weights(str(weights_file))
    return model
