"""Generic checks for a Keras layer, in the manner of keras-hub's run_layer_test.

    from tests.mrcnn.layer_testing import run_layer_test, jit_call

    outputs = run_layer_test(ProposalLayer, {"proposal_count": 8, ...}, [probs, deltas, anchors])

run_layer_test builds the layer from plain-number kwargs and checks, on the
given numpy inputs (a list, one array per layer input):
  * a symbolic call (batch size None and the real one) has the shape that
    compute_output_shape gives;
  * an eager call has that shape too, with the real batch size;
  * get_config -> from_config gives the same config and the same outputs;
  * a jit-compiled call (tf.function(jit_compile=True) on TensorFlow, jax.jit
    on JAX) gives the eager outputs;
  * the layer runs inside a functional keras.Model.
It returns the eager outputs as numpy for further checks.
jit_call(fn, *args) runs fn compiled for the current backend and returns numpy.
jit_gradients(fn, *args) returns the gradients of sum(fn(*args)) with respect to
each argument, compiled, as numpy (zeros where no gradient flows).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np


def jit_call(fn: Callable, *args) -> Any:
    """fn(*args) compiled by the backend's XLA path; outputs as numpy."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        result = tf.function(fn, jit_compile=True)(*args)
    elif backend == "jax":
        import jax

        result = jax.jit(fn)(*args)
    else:
        result = fn(*args)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, result)


def jit_gradients(fn: Callable, *args) -> list:
    """Gradients of sum(fn(*args)) w.r.t. each float argument, compiled; numpy."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def grads(*xs):
            with tf.GradientTape() as tape:
                tape.watch(xs)
                total = tf.reduce_sum(fn(*xs))
            return tape.gradient(total, xs,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)

        result = tf.function(grads, jit_compile=True)(*args)
    elif backend == "jax":
        import jax

        total = lambda *xs: fn(*xs).sum()  # noqa: E731
        result = jax.jit(jax.grad(total, argnums=tuple(range(len(args)))))(*args)
    else:
        raise NotImplementedError(f"jit_gradients: no gradient helper for {backend}")
    return [keras.ops.convert_to_numpy(g) for g in result]


def _shape(x) -> tuple:
    return tuple(x.shape)


def run_layer_test(layer_cls: type, init_kwargs: dict, inputs: Sequence[np.ndarray],
                   atol: float = 1e-6) -> np.ndarray:
    """Run the generic layer checks described in the module docstring."""
    layer = layer_cls(**init_kwargs)
    real_shapes = [tuple(x.shape) for x in inputs]

    for batch in (None, real_shapes[0][0]):
        symbolic = [keras.KerasTensor((batch,) + shape[1:], dtype=str(x.dtype))
                    for shape, x in zip(real_shapes, inputs)]
        expected = layer.compute_output_shape([_shape(s) for s in symbolic])
        assert _shape(layer(symbolic)) == tuple(expected), (
            f"symbolic call {_shape(layer(symbolic))} != compute_output_shape {expected}")

    eager = keras.ops.convert_to_numpy(layer(list(inputs)))
    assert eager.shape == tuple(layer.compute_output_shape(real_shapes))

    config = layer.get_config()
    for key, value in init_kwargs.items():
        stored = config[key]
        assert np.allclose(stored, value), f"get_config()[{key!r}] = {stored!r}, not {value!r}"
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(list(inputs))), eager,
                               atol=atol)

    compiled = jit_call(lambda *xs: layer(list(xs)), *inputs)
    np.testing.assert_allclose(compiled, eager, atol=atol)

    model_inputs = [keras.Input(batch_shape=shape, dtype=str(x.dtype))
                    for shape, x in zip(real_shapes, inputs)]
    model = keras.Model(model_inputs, layer_cls.from_config(config)(model_inputs))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(list(inputs))), eager, atol=atol)
    return eager
