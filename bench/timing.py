"""Timing and memory helpers shared by the bench scripts (not part of the library).

Every figure is wall time around a call whose results have been brought back to the
host, so that asynchronous devices (JAX, CUDA) have finished the work being timed.
On a shared machine the minimum of a few runs is the steadier figure; the median is
reported beside it.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from typing import Any, Callable


def to_host(value: Any) -> Any:
    """Every tensor in a (nested) result as numpy, which waits for the device."""
    import keras

    return keras.tree.map_structure(keras.ops.convert_to_numpy, value)


def repeat_seconds(fn: Callable[[], Any], repeats: int) -> dict:
    """Run `fn` `repeats` times; {"median_s", "min_s"} of the wall times."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times)}


def first_and_steady(fn: Callable[[], Any], repeats: int) -> dict:
    """Time the first call (which compiles) apart from `repeats` steady ones.

    Returns:
        {"first_s", "median_s", "min_s", "compile_s"}; compile_s is the first call
        minus the steady median, the cost of tracing and XLA / jax.jit compilation.
    """
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    steady = repeat_seconds(fn, repeats)
    return {"first_s": first, **steady, "compile_s": max(0.0, first - steady["median_s"])}


def best_ms(fn: Callable[[], Any], repeats: int, warmup: bool = True) -> float:
    """Best of `repeats` wall times of `fn` in milliseconds, after one warm-up call."""
    if warmup:
        fn()
    return round(1000 * repeat_seconds(fn, repeats)["min_s"], 3)


def compiled(fn: Callable) -> Callable:
    """`fn` compiled whole for the current Keras backend (XLA on TF, jax.jit on JAX)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


def peak_host_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def device_memory_mb() -> dict | None:
    """Peak accelerator memory of the Keras backend (and torch, when loaded), in MiB.

    None without an accelerator. JAX reports its allocator's peak; TensorFlow its
    GPU:0 peak; torch its CUDA caching allocator's peak.
    """
    import keras

    found = {}
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            stats = device.memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                found["jax"] = round(stats["peak_bytes_in_use"] / 2**20, 1)
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            found["tensorflow"] = round(
                tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        found["torch"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return found or None


def accelerator() -> str:
    """A name for the device the Keras backend computes on ("cpu" without one)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else str(device.device_kind)
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "gpu")
    return "cpu"


def environment() -> dict:
    """Where the figures were taken: backend, device, CPU count and load, versions."""
    import keras
    import numpy as np

    return {
        "backend": keras.backend.backend(),
        "device": accelerator(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
    }
