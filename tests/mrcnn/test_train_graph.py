"""The training graph against matterport's recorded contract (layers_*_training.json).

Weighted layers (names, order, weight shapes), the parameter count, the input names,
and for each train(layers=...) shortcut the trainable weights and parameter count that
matterport's set_trainable gave.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from mrcnn.config import Config
from mrcnn.model import MaskRCNN
from tests.mrcnn.tiny_training import EllipseDataset, TinyConfig

pytestmark = [pytest.mark.backend_agnostic]


def _weight_name(path: str) -> str:
    return "/".join(path.split(":")[0].split("/")[-2:])


@pytest.fixture(scope="module", params=["r50_256_training", "coco_r101_training"])
def built(request, reference_dir, tmp_path_factory):
    with open(reference_dir / f"layers_{request.param}.json") as f:
        contract = json.load(f)
    config = type("ContractConfig", (Config,), dict(contract["config_overrides"]))()
    model = MaskRCNN("training", config, str(tmp_path_factory.mktemp("logs")))
    return contract, model


def test_weighted_layers_and_weights_in_matterport_order(built):
    contract, model = built
    keras_model = model.keras_model
    assert ([layer.name for layer in keras_model.layers if layer.weights]
            == contract["layers_with_weights_in_order"])
    expected = [(_weight_name(w["name"]), tuple(w["shape"]))
                for w in contract["all_weights_in_order"]]
    assert [(_weight_name(w.path), tuple(w.shape)) for w in keras_model.weights] == expected
    assert keras_model.count_params() == contract["count_params"]


def test_inputs_and_loss_outputs_are_named_as_matterport(built):
    contract, model = built
    keras_model = model.keras_model
    assert ([t.name for t in keras_model.inputs]
            == [i["name"].split(":")[0] for i in contract["inputs"]])
    loss_layers = [name for name in contract["output_layer_names"] if name.endswith("_loss")]
    assert loss_layers == ["rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
                           "mrcnn_bbox_loss", "mrcnn_mask_loss"]
    produced = [t._keras_history[0].name for t in keras_model.outputs]
    assert produced[-5:] == loss_layers
    assert len(produced) == len(contract["outputs"])


@pytest.mark.parametrize("layers", ["heads", "3+", "4+", "5+", "all"])
def test_set_trainable_matches_matterport(built, layers):
    contract, model = built
    recorded = contract["train_layers_regex"][layers]
    model.set_trainable(layers, verbose=0)
    keras_model = model.keras_model
    trainable = sorted(_weight_name(w.path) for w in keras_model.trainable_weights)
    assert trainable == sorted(_weight_name(n)
                               for n in recorded["trainable_weight_names_after_set_trainable"])
    assert (sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
            == recorded["trainable_params_after_set_trainable"])


def test_use_rpn_rois_false_adds_input_roi(tmp_path):
    config = type("NoRpnRois", (TinyConfig,), {"USE_RPN_ROIS": False})()
    model = MaskRCNN("training", config, str(tmp_path))
    (roi_input,) = [t for t in model.keras_model.inputs if t.name == "input_roi"]
    assert tuple(roi_input.shape) == (2, config.POST_NMS_ROIS_TRAINING, 4)
    # The same ROIs, fed from random_rois, give finite losses and heads targets.
    from mrcnn.pipeline import MaskRCNNSequence

    batch = MaskRCNNSequence(EllipseDataset(2), config, seed=0,
                             random_rois=config.POST_NMS_ROIS_TRAINING)[0][0]
    outputs = model.keras_model(batch, training=False)
    losses = [float(v) for v in outputs[-5:]]
    assert all(np.isfinite(losses)) and losses[3] > 0  # positives among the random ROIs


def test_training_methods_refuse_an_inference_model(tmp_path):
    model = MaskRCNN("inference", TinyConfig(), str(tmp_path))
    with pytest.raises(ValueError, match="mode='training'"):
        model.compile(0.01, 0.9)
    with pytest.raises(ValueError, match="mode"):
        MaskRCNN("train", TinyConfig(), str(tmp_path))
