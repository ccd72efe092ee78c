"""samples/small_backbone.py: strides, shapes and ResNet layer names for train(layers=)."""
import keras
import pytest

from mrcnn.training import select_layer_names
from samples.small_backbone import small_backbone, small_backbone_shapes


@pytest.mark.backend_agnostic
def test_feature_strides_match_the_declared_shapes():
    image = keras.Input(shape=(128, 192, 3), batch_size=1)
    c1, *features = small_backbone(image)
    assert tuple(c1.shape[1:3]) == (64, 96)
    shapes = small_backbone_shapes((128, 192))
    assert [tuple(f.shape[1:3]) for f in features] == [tuple(s) for s in shapes[:4]]
    assert tuple(shapes[4]) == (2, 3)  # P6, the FPN's extra pooled level


@pytest.mark.backend_agnostic
def test_layer_regexes_select_the_resnet_stages():
    image = keras.Input(shape=(64, 64, 3), batch_size=1)
    names = [layer.name for layer in keras.Model(image, small_backbone(image)).layers
             if layer.weights]
    assert "conv1" in names and "bn_conv1" in names
    selected = select_layer_names(names, "3+")
    assert selected and all(n.startswith(("res3", "res4", "res5", "bn3", "bn4", "bn5"))
                            for n in selected)
    assert not any(n.startswith(("res2", "bn2", "conv1")) for n in selected)
    assert set(select_layer_names(names, "5+")) < set(selected)
    assert select_layer_names(names, "heads") == []


def test_small_backbone_config(tmp_path):
    from samples import _cli, lungs

    args = _cli.parse_args(lungs.SAMPLE, ["evaluate", f"--dataset={tmp_path}",
                                          "--backbone=small", "--image-size=64"])
    config = _cli.make_config(lungs.SAMPLE, args, inference=True)
    assert config.BACKBONE is small_backbone
    assert config.COMPUTE_BACKBONE_SHAPE((64, 64)).tolist() == [[16, 16], [8, 8], [4, 4],
                                                                 [2, 2], [1, 1]]
