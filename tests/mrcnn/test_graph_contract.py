"""The inference graph against matterport's recorded graph contract (layers_*_inference.json).

Only layers that own weights are part of the contract (README section 3): their names,
their number of weights, the order of the weights, and the shapes. Weightless layers get
Keras' automatic names and are not compared.
"""
from __future__ import annotations

import json

import pytest

from mrcnn.config import Config
from mrcnn.model import MaskRCNN

pytestmark = [pytest.mark.backend_agnostic]


def _contract(reference_dir, tag: str) -> dict:
    with open(reference_dir / f"layers_{tag}.json") as f:
        return json.load(f)


def _config(contract: dict) -> Config:
    overrides = dict(contract["config_overrides"])
    return type("ContractConfig", (Config,), overrides)()


def _weight_name(path: str) -> str:
    """'rpn_model/rpn_conv_shared/kernel' or 'conv1/kernel:0' -> 'layer/weight'."""
    return "/".join(path.split(":")[0].split("/")[-2:])


def _expected_layers(contract: dict) -> list[tuple[str, list[tuple[str, tuple]]]]:
    return [(layer["name"], [(_weight_name(w["name"]), tuple(w["shape"]))
                             for w in layer["weights"]])
            for layer in contract["layers"] if layer["weights"]]


def _actual_layers(model) -> list[tuple[str, list[tuple[str, tuple]]]]:
    return [(layer.name, [(_weight_name(w.path), tuple(w.shape)) for w in layer.weights])
            for layer in model.layers if layer.weights]


@pytest.fixture(scope="module", params=["r50_256_inference", "coco_r101_inference"])
def built(request, reference_dir, tmp_path_factory):
    contract = _contract(reference_dir, request.param)
    model = MaskRCNN("inference", _config(contract), str(tmp_path_factory.mktemp("logs")))
    return contract, model


def test_weighted_layers_in_matterport_order(built):
    contract, model = built
    expected = _expected_layers(contract)
    actual = _actual_layers(model.keras_model)
    assert [name for name, _ in actual] == contract["layers_with_weights_in_order"]
    assert actual == expected


def test_all_weights_in_order_and_parameter_count(built):
    contract, model = built
    expected = [(_weight_name(w["name"]), tuple(w["shape"]))
                for w in contract["all_weights_in_order"]]
    actual = [(_weight_name(w.path), tuple(w.shape)) for w in model.keras_model.weights]
    assert actual == expected
    assert model.keras_model.count_params() == contract["count_params"]


def test_rpn_model_is_nested_with_matterport_sublayers(built):
    contract, model = built
    rpn = model.keras_model.get_layer("rpn_model")
    (recorded,) = [layer for layer in contract["layers"] if layer["name"] == "rpn_model"]
    expected = [(s["name"], [tuple(w["shape"]) for w in s["weights"]])
                for s in recorded["sublayers"] if s["weights"]]
    actual = [(layer.name, [tuple(w.shape) for w in layer.weights])
              for layer in rpn.layers if layer.weights]
    assert actual == expected


def test_layer_settings_match(built):
    """Strides, padding, activations and epsilons of the weighted layers, as recorded."""
    contract, model = built
    keys = ("filters", "kernel_size", "strides", "padding", "activation", "units",
            "epsilon", "use_bias")
    for recorded in contract["layers"]:
        if not recorded["weights"] or "config" not in recorded:
            continue
        config = model.keras_model.get_layer(recorded["name"]).get_config()
        for key in keys:
            if key in recorded["config"]:
                value = config[key]
                value = list(value) if isinstance(value, tuple) else value
                assert value == recorded["config"][key], (recorded["name"], key)


def test_output_shapes(built):
    contract, model = built
    recorded = [o["shape"] for o in contract["outputs"]]
    actual = [list(o.shape) for o in model.keras_model.outputs]
    assert len(actual) == len(recorded)
    for got, want in zip(actual, recorded):
        # Matterport left the anchor count dynamic (None); ours is static.
        assert len(got) == len(want)
        assert all(w is None or g == w for g, w in zip(got, want)), (got, want)
    batch = contract["derived"]["BATCH_SIZE"]
    assert all(shape[0] == batch for shape in actual)
    num_anchors = len(model.get_anchors(contract["derived"]["IMAGE_SHAPE"]))
    assert actual[-2][1] == actual[-1][1] == num_anchors  # rpn_class, rpn_bbox
