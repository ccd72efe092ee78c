import h5py
import numpy as np
import pytest
from keras import ops

from unet import layers as unet_layers
from unet.model import SKIP_LAYERS, UNet, build_unet, skip_layers
from unet.weights import ENCODER_LAYERS

pytestmark = pytest.mark.backend_agnostic


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _producer(tensor):
    return tensor._keras_history.operation.name


@pytest.mark.parametrize("shape", [(64, 96, 3), (32, 64, 1)])
def test_output_shape_and_range(shape):
    model = UNet(base_filters=4).get_model(shape)
    assert model.output_shape == (None, shape[0], shape[1], 1)
    out = np.asarray(model.predict_on_batch(
        np.random.default_rng(0).random((2, *shape), np.float32)))
    assert out.shape == (2, shape[0], shape[1], 1)
    assert out.dtype == np.float32
    assert ((out > 0) & (out < 1)).all()


def test_vgg16_names_and_skip_connections():
    model = build_unet((64, 64, 3), base_filters=8)
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.startswith("block") and "_conv" in n] == list(ENCODER_LAYERS)
    # decoder5 (4x4 at a 64-pixel input) joins block5_conv3; decoder1 (64x64) block1_conv2.
    for stage, skip in zip(range(1, 6), SKIP_LAYERS):
        up, joined = model.get_layer(f"decoder{stage}_concat").input
        assert _producer(up) == f"decoder{stage}_up"
        assert _producer(joined) == skip
        assert tuple(joined.shape[1:3]) == (64 >> (stage - 1),) * 2
    assert sum(isinstance(layer, type(model.get_layer("decoder1_a_bn")))
               for layer in model.layers) == 10


def test_encoder_batchnorm_follows_each_encoder_conv_and_feeds_the_skips():
    model = build_unet((64, 64, 1), base_filters=8, encoder_batchnorm=True)
    names = [layer.name for layer in model.layers]
    for conv in ENCODER_LAYERS:
        i = names.index(conv)
        assert names[i + 1:i + 3] == [f"{conv}_bn", f"{conv}_relu"]
        assert model.get_layer(conv).activation.__name__ == "linear"
    for stage, skip in zip(range(1, 6), skip_layers(encoder_batchnorm=True)):
        assert skip == f"{SKIP_LAYERS[stage - 1]}_relu"
        _, joined = model.get_layer(f"decoder{stage}_concat").input
        assert _producer(joined) == skip
    assert skip_layers() == SKIP_LAYERS
    plain = build_unet((64, 64, 1), base_filters=8)
    assert not any(layer.name.endswith("_bn") and layer.name.startswith("block")
                   for layer in plain.layers)
    # Frozen statistics of a fresh BatchNorm are near identity, so at inference the
    # encoder computes what the plain one does with the same convolution weights.
    for layer in plain.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(0).random((1, 64, 64, 1), np.float32)
    np.testing.assert_allclose(_np(model(x, training=False)), _np(plain(x, training=False)),
                               atol=1e-3)


def test_full_width_matches_vgg16_encoder_parameter_count():
    model = build_unet((32, 32, 3))
    encoder = sum(model.get_layer(n).count_params() for n in ENCODER_LAYERS)
    assert encoder == 14_714_688  # keras.applications.VGG16(include_top=False)


def test_dropout_layers_only_when_asked():
    plain = {layer.name for layer in build_unet((32, 32, 3), 4).layers}
    dropped = build_unet((32, 32, 3), 4, dropout=0.3)
    assert not any("dropout" in n for n in plain)
    assert dropped.get_layer("decoder3_dropout").rate == 0.3


@pytest.mark.parametrize("shape, message", [
    ((100, 64, 3), "height must be a positive multiple of 32"),
    ((64, 48, 3), "width must be a positive multiple of 32"),
    ((64, 64, 2), "channels must be 1"),
    ((64, 64), r"\(H, W, C\)"),
])
def test_bad_input_shapes_are_clear_errors(shape, message):
    with pytest.raises(ValueError, match=message):
        build_unet(shape, 4)


def test_grayscale_and_normalisation_layers():
    x = np.array([[[[0.2]]]], np.float32)
    np.testing.assert_allclose(_np(unet_layers.GrayscaleToRGB()(x)), [[[[0.2] * 3]]])
    rgb = np.array([[[[1.0, 0.0, 0.5]]]], np.float32)
    expected = [0.5 * 255 - 103.939, 0 - 116.779, 255 - 123.68]
    assert _np(unet_layers.ImageNetCaffeNormalization()(rgb))[0, 0, 0] == pytest.approx(
        expected, rel=1e-5)


def _write_legacy_vgg16_notop(path, rng):
    """The layout of keras' vgg16 notop file: root layer_names, one group per layer."""
    model = build_unet((32, 32, 3))
    values = {}
    with h5py.File(path, "w") as f:
        names = ["input_1"] + list(ENCODER_LAYERS)
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.create_group("input_1").attrs["weight_names"] = []
        for name in ENCODER_LAYERS:
            kernel, bias = (w.shape for w in model.get_layer(name).weights)
            values[name] = (rng.normal(size=kernel).astype(np.float32),
                            rng.normal(size=bias).astype(np.float32))
            group = f.create_group(name)
            group.attrs["weight_names"] = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
            group[f"{name}_W_1:0"], group[f"{name}_b_1:0"] = values[name]
    return values


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "vgg16_notop.h5"
    return path, _write_legacy_vgg16_notop(path, np.random.default_rng(0))


def test_encoder_weights_from_a_local_legacy_file_load_by_name(vgg_file):
    path, values = vgg_file
    model = UNet(encoder_weights=str(path), freeze_encoder=True).get_model((32, 32, 1))
    for name in ("block1_conv1", "block3_conv2", "block5_conv3"):
        kernel, bias = model.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, values[name][0])
        np.testing.assert_array_equal(bias, values[name][1])
        assert not model.get_layer(name).trainable
    assert model.get_layer("decoder1_a_conv").trainable
    assert model.get_layer("imagenet_normalization") is not None


def test_encoder_weights_load_into_the_batchnorm_encoder(vgg_file):
    path, values = vgg_file
    model = UNet(encoder_weights=str(path), encoder_batchnorm=True).get_model((32, 32, 3))
    kernel, bias = model.get_layer("block4_conv3").get_weights()
    np.testing.assert_array_equal(kernel, values["block4_conv3"][0])
    np.testing.assert_array_equal(bias, values["block4_conv3"][1])


def test_imagenet_when_not_cached_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="samples/unet.py fetch-weights"):
        UNet(encoder_weights="imagenet").get_model((32, 32, 3))


def test_imagenet_from_the_keras_cache(tmp_path, monkeypatch, vgg_file):
    path, values = vgg_file
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
     ).symlink_to(path)
    model = UNet(encoder_weights="imagenet").get_model((32, 32, 3))
    np.testing.assert_array_equal(model.get_layer("block2_conv1").get_weights()[1],
                                  values["block2_conv1"][1])


def test_bad_encoder_weight_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        UNet(encoder_weights=str(tmp_path / "nowhere.h5")).get_model((32, 32, 3))
    partial = tmp_path / "partial.h5"
    with h5py.File(partial, "w") as f:
        f.attrs["layer_names"] = [b"block1_conv1"]
    with pytest.raises(ValueError, match="lacks VGG16 encoder layers.*block1_conv2"):
        UNet(encoder_weights=str(partial)).get_model((32, 32, 3))
    with pytest.raises(ValueError, match="base_filters=64"):
        UNet(encoder_weights=str(partial), base_filters=16)
    with pytest.raises(ValueError, match="freeze_encoder"):
        UNet(freeze_encoder=True)


def test_fetch_offline_names_the_url_and_the_manual_route(tmp_path, monkeypatch):
    import keras

    from unet import weights

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ConnectionError) as error:
        weights.fetch_imagenet_weights()
    assert weights.IMAGENET_URL in str(error.value)
    assert str(tmp_path / "models") in str(error.value)
