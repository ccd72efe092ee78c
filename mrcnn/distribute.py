"""Data-parallel training over GPU_COUNT devices through the backend's own engine.

TensorFlow: ``tf.distribute.MirroredStrategy``; each replica runs the graph on
IMAGES_PER_GPU images. JAX: ``keras.distribution.DataParallel``; one program is traced
for the whole BATCH_SIZE batch and sharded over the devices. Replaces matterport's
ParallelModel. The devices are the first GPU_COUNT GPUs, or CPU devices where there is
no GPU (tests split the CPU into logical devices).
"""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import keras


def graph_batch(config) -> int:
    """The static batch size of the training graph for this backend (see module doc)."""
    if config.GPU_COUNT > 1 and keras.backend.backend() == "tensorflow":
        return int(config.IMAGES_PER_GPU)
    return int(config.BATCH_SIZE)


def _pick(devices: list, kind: str, count: int) -> list:
    if len(devices) < count:
        raise ValueError(f"GPU_COUNT is {count} but only {len(devices)} {kind} device(s) "
                         f"are visible")
    return devices[:count]


def scope_factory(gpu_count: int) -> Callable[[], ContextManager]:
    """A function returning a fresh context in which to build, compile and fit the model.

    Raises:
        ValueError: GPU_COUNT > 1 with too few devices or on a backend other than
            tensorflow or jax.
    """
    if gpu_count <= 1:
        return contextlib.nullcontext
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        names = [d.name for d in _pick(devices, "GPU" if gpus else "CPU", gpu_count)]
        strategy = tf.distribute.MirroredStrategy(names)
        return strategy.scope
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform != "cpu"]
        devices = gpus or jax.devices("cpu")
        distribution = keras.distribution.DataParallel(
            devices=_pick(devices, "GPU" if gpus else "CPU", gpu_count))
        return distribution.scope
    raise ValueError(f"GPU_COUNT={gpu_count} needs the tensorflow or jax backend; "
                     f"KERAS_BACKEND is {backend!r}")

