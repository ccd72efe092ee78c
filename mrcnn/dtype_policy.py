"""Building a model under a Keras dtype policy without changing the global one.

Mask R-CNN (``Config.DTYPE_POLICY``) and the U-Net (``UNet(dtype_policy=...)``) take
the policy per model: the layers made inside ``policy_scope`` keep it, and the global
policy is back afterwards, so two models of one process can differ.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

# The policies a model can be built under: float32 variables throughout, so that the
# weights load and save as float32 whatever the policy. None: the global one as it is.
NAMED_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
POLICIES = (None, *NAMED_POLICIES)


@contextlib.contextmanager
def policy_scope(name: str | None) -> Iterator[None]:
    """Layers made inside take Keras dtype policy `name` (None: the global one as is)."""
    if name is None:
        yield
        return
    import keras  # here, so that mrcnn.config stays importable without a backend

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
