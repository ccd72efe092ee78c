"""3x3 stride-1 "same" convolutions by Winograd's F(2x2, 3x3) algorithm, on keras.ops.

Each 2x2 block of outputs is computed from a 4x4 input tile with 16 multiplications per
channel pair instead of 36 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
Networks", 2015): the tiles and the kernel are moved into the transformed domain by
small additions, the channels are mixed there by 16 matrix products, and the products
come back the same way. XLA's CPU convolution has no such algorithm, and 3x3 convolutions
are most of Mask R-CNN's work (the ResNet 3x3s, the FPN outputs, the RPN's shared conv,
the mask head), so on a CPU this is about 1.5x faster for them at 256 channels and more,
with float32 results within about 1e-6 (relative) of the direct convolution. GPU
libraries (cuDNN) choose such algorithms themselves, so `auto` keeps the direct
convolution there.

The algorithm is chosen per process, before a model is traced:
`set_conv3x3_algorithm("direct" | "winograd" | "auto")`. The default is "direct": with
Winograd on, XLA's compile time about doubles, and one full TF test run crashed (SIGSEGV)
inside a compiled detect() that passed on its own; it stays opt-in until that is
understood. "auto" is Winograd when the Keras backend computes on a CPU and the steps
are XLA-compiled (mrcnn.xla.use_xla(): JAX, or TensorFlow with ``set_xla("on")``).
Without XLA's fusion the transforms run as separate ops: TensorFlow's graph mode (its
CPU default) runs the ResNet-101 1024x1024 inference step only 1.09x faster with
Winograd, and the ResNet-50 256x256 batch-2 train step 2.1x slower (3.70 s -> 7.87 s).
"""
from __future__ import annotations

import keras
from keras import layers, ops

from mrcnn.xla import tensorflow_gpus, use_xla

ALGORITHMS = ("auto", "direct", "winograd")
_algorithm = "direct"


def set_conv3x3_algorithm(name: str) -> None:
    """Choose how WinogradMixin layers (`Conv2D` here, `mrcnn.heads.RoiConv2D`)
    convolve; models traced later use it.

    Args:
        name: "direct" (the backend's convolution), "winograd", or "auto" (Winograd
            when the backend computes on a CPU under XLA, see the module doc).
    """
    global _algorithm
    if name not in ALGORITHMS:
        raise ValueError(f"unknown 3x3 convolution algorithm {name!r}; expected one of "
                         f"{ALGORITHMS}")
    _algorithm = name


def conv3x3_algorithm() -> str:
    """The algorithm in force, "direct" or "winograd" ("auto" resolved)."""
    if _algorithm != "auto":
        return _algorithm
    return "winograd" if _backend_on_cpu() and use_xla() else "direct"


def _backend_on_cpu() -> bool:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() == "cpu"
    if backend == "tensorflow":
        return not tensorflow_gpus()
    return False  # other backends keep their own convolution


def _input_transform(t0, t1, t2, t3):
    """B^T d for four rows (or columns) d0..d3 of 4x4 tiles."""
    return t0 - t2, t1 + t2, t2 - t1, t1 - t3


def _output_transform(m0, m1, m2, m3):
    """A^T m: two output rows (or columns) from four transformed ones."""
    return m0 + m1 + m2, m1 - m2 - m3


def _kernel_transform(k0, k1, k2):
    """G g: four transformed rows (or columns) from the three of a 3x3 kernel."""
    return k0, (k0 + k1 + k2) * 0.5, (k0 - k1 + k2) * 0.5, k2


def winograd_conv3x3(inputs, kernel):
    """3x3 convolution, stride 1, "same" zero padding, channels last.

    Args:
        inputs: [batch, H, W, C_in] with H and W known (static).
        kernel: [3, 3, C_in, C_out], as keras.layers.Conv2D stores it.

    Returns:
        [batch, H, W, C_out], what `ops.conv(inputs, kernel, padding="same")` gives.
    """
    height, width, channels = inputs.shape[1:]
    filters = kernel.shape[-1]
    rows, cols = -(-height // 2), -(-width // 2)  # output tiles (odd sizes padded)
    # One zero row/column before, enough after that tile i spans padded rows
    # 2i .. 2i+3; then split each axis into (tile, parity) so that the four rows of
    # every tile are four plain slices.
    padded = ops.pad(inputs, ((0, 0), (1, 2 * rows + 1 - height), (1, 2 * cols + 1 - width),
                              (0, 0)))
    grid = ops.reshape(padded, (-1, rows + 1, 2, cols + 1, 2, channels))
    tile_rows = _input_transform(*[grid[:, a // 2:a // 2 + rows, a % 2] for a in range(4)])
    transformed = [t for row in tile_rows
                   for t in _input_transform(*[row[:, :, b // 2:b // 2 + cols, b % 2]
                                               for b in range(4)])]
    # [16, batch * rows * cols, C_in] @ [16, C_in, C_out]
    tiles = ops.reshape(ops.stack(transformed), (16, -1, channels))
    kernel_rows = _kernel_transform(kernel[0], kernel[1], kernel[2])
    weights = ops.stack([w for row in kernel_rows
                         for w in _kernel_transform(row[0], row[1], row[2])])
    products = ops.reshape(ops.matmul(tiles, weights), (4, 4, -1, rows, cols, filters))
    out_rows = _output_transform(*[products[i] for i in range(4)])
    blocks = [ops.stack(_output_transform(*[r[j] for j in range(4)]), axis=3)
              for r in out_rows]  # 2 x [batch, rows, cols, 2, C_out]
    outputs = ops.reshape(ops.stack(blocks, axis=2), (-1, 2 * rows, 2 * cols, filters))
    return outputs[:, :height, :width]


class WinogradMixin:
    """Mixin for keras.layers.Conv2D: 3x3 stride-1 "same" convolutions of known size
    go through `winograd_conv3x3` when `conv3x3_algorithm()` says so. The layer, its
    variables and its config are Conv2D's."""

    def convolution_op(self, inputs, kernel):
        if (conv3x3_algorithm() == "winograd" and tuple(self.kernel_size) == (3, 3)
                and tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1)
                and self.padding == "same" and self.groups == 1
                and self.data_format == "channels_last"
                and None not in tuple(inputs.shape[1:3])):
            return winograd_conv3x3(inputs, kernel)
        return super().convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="mrcnn")
class Conv2D(WinogradMixin, layers.Conv2D):
    """keras.layers.Conv2D whose 3x3 stride-1 "same" case may use Winograd (above)."""
