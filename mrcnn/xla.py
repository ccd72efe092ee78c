"""Whether the inference and train steps run XLA-compiled (Keras ``jit_compile``).

Every step *can* be compiled whole (static shapes, see ARCHITECTURE.md); this module
decides whether it *is*, per backend and device:

* JAX: always. ``jit_compile=False`` there means op-by-op dispatch, which is only for
  debugging.
* TensorFlow with a GPU: always.
* TensorFlow on a CPU only: not by default. TensorFlow's graph mode runs convolutions
  and matmuls through oneDNN, which beats XLA's CPU code, and it uses the CPU's
  bfloat16 instructions (AVX512_BF16, AMX) under a ``mixed_bfloat16`` policy, where XLA
  computes bfloat16 at float32 speed. Measured on 2 AVX-512 cores (the README's speed
  table): the ResNet-101 1024x1024 inference step 5.12 s under XLA, 4.22 s in graph
  mode, 2.54 s in graph mode under mixed_bfloat16; the ResNet-50 256x256 batch-2 train
  step 4.84 s, 3.70 s and 2.32 s; and the graph compiles 2-3x sooner. Keras's own
  ``jit_compile="auto"`` makes the same choice.
* TensorFlow replicas on logical CPU devices (GPU_COUNT > 1 without GPUs, as in tests):
  never, whatever the mode. XLA cannot compile a replica whose variables live on
  another device.

``set_xla("on")`` restores XLA on a TensorFlow CPU (to check that a graph compiles, or
to compare); ``set_xla("off")`` turns it off everywhere. Models take the setting when
they are built (inference) or compiled (training); a built model can still be switched
with ``model.keras_model.jit_compile = ...``, which detect() follows.
"""
from __future__ import annotations

import keras

MODES = ("auto", "on", "off")
_mode = "auto"


def set_xla(mode: str) -> None:
    """'auto' (the default, see the module doc), 'on' or 'off'."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"XLA mode must be one of {MODES}, got {mode!r}")
    _mode = mode


def xla_mode() -> str:
    return _mode


def tensorflow_gpus() -> list:
    """TensorFlow's logical GPU devices (imports TensorFlow: call on that backend only)."""
    import tensorflow as tf

    return tf.config.list_logical_devices("GPU")


def use_xla(gpu_count: int = 1) -> bool:
    """Whether a step replicated over `gpu_count` devices should be XLA-compiled now."""
    if keras.backend.backend() != "tensorflow":
        return _mode != "off"
    has_gpu = bool(tensorflow_gpus())
    if gpu_count > 1 and not has_gpu:
        return False
    if _mode == "auto":
        return has_gpu
    return _mode == "on"
