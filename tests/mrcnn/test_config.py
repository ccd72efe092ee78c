"""mrcnn.config.Config against matterport's recorded defaults (config_defaults.json),
display(), subclassing, and the validation errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mrcnn.config import Config

_TYPES = {
    "int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
    "dict": dict, "NoneType": type(None), "ndarray": np.ndarray,
}


def _defaults(reference_dir):
    with open(reference_dir / "config_defaults.json") as f:
        return json.load(f)


def _config(**overrides) -> Config:
    return type("TestConfig", (Config,), overrides)()


def _recorded_sets(reference_dir):
    recorded = _defaults(reference_dir)
    yield "golden", recorded["overrides"], recorded["attributes"]
    for name, other in recorded["other_configs"].items():
        yield name, other["overrides"], other["attributes"]


def _assert_attribute(where: str, actual, spec: dict) -> None:
    expected_type = _TYPES[spec["type"]]
    assert type(actual) is expected_type, f"{where}: {type(actual).__name__} != {spec['type']}"
    if spec["type"] == "ndarray":
        assert actual.dtype == np.dtype(spec["dtype"]), f"{where}: dtype {actual.dtype}"
        assert list(actual.shape) == spec["shape"], f"{where}: shape {actual.shape}"
        np.testing.assert_array_equal(actual, np.asarray(spec["value"]), err_msg=where)
    elif spec["type"] == "tuple":
        assert list(actual) == spec["value"], where
    else:
        assert actual == spec["value"], f"{where}: {actual!r} != {spec['value']!r}"


@pytest.mark.shared_data
@pytest.mark.backend_agnostic
def test_attributes_match_matterport(reference_dir) -> None:
    for name, overrides, attributes in _recorded_sets(reference_dir):
        config = _config(**overrides)
        public = config.to_dict()
        missing = set(attributes) - set(public)
        assert not missing, f"{name}: attributes missing {sorted(missing)}"
        for attr, spec in attributes.items():
            _assert_attribute(f"{name}.{attr}", getattr(config, attr), spec)


@pytest.mark.shared_data
@pytest.mark.backend_agnostic
def test_class_attributes_are_matterport_s(reference_dir) -> None:
    recorded = _defaults(reference_dir)
    derived = set(recorded["derived_in_init"])
    for attr in recorded["class_attribute_order_in_source"]:
        assert attr in vars(Config), f"{attr} must be a class attribute of Config"
    for attr in derived:
        assert attr not in vars(Config), f"{attr} is derived in __init__, not a class default"


@pytest.mark.backend_agnostic
def test_derived_values_follow_overrides() -> None:
    config = _config(GPU_COUNT=2, IMAGES_PER_GPU=3, NUM_CLASSES=5, IMAGE_MAX_DIM=512,
                     IMAGE_MIN_DIM=256, IMAGE_CHANNEL_COUNT=1, MEAN_PIXEL=np.array([100.0]))
    assert config.BATCH_SIZE == 6
    np.testing.assert_array_equal(config.IMAGE_SHAPE, [512, 512, 1])
    assert config.IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 5
    crop = _config(IMAGE_RESIZE_MODE="crop", IMAGE_MIN_DIM=384, IMAGE_MAX_DIM=512)
    np.testing.assert_array_equal(crop.IMAGE_SHAPE, [384, 384, 3])


@pytest.mark.backend_agnostic
def test_subclass_overrides_do_not_leak() -> None:
    class Lungs(Config):
        NAME = "lungs"
        NUM_CLASSES = 1 + 1
        IMAGES_PER_GPU = 1

    lungs = Lungs()
    assert (lungs.NAME, lungs.NUM_CLASSES, lungs.BATCH_SIZE) == ("lungs", 2, 1)
    assert (Config.NAME, Config.NUM_CLASSES, Config.IMAGES_PER_GPU) == (None, 1, 2)
    assert Config().IMAGE_META_SIZE == 13


@pytest.mark.backend_agnostic
def test_display_prints_matterport_format(capsys) -> None:
    config = _config(NAME="shown", NUM_CLASSES=4)
    config.display()
    out = capsys.readouterr().out
    assert out.startswith("\nConfigurations:\n")
    lines = out.strip("\n").splitlines()[1:]
    names = [line.split()[0] for line in lines]
    assert names == sorted(config.to_dict())
    assert "{:30} {}".format("NAME", "shown") in lines
    assert "{:30} {}".format("IMAGE_META_SIZE", 16) in lines
    assert "{:30} {}".format("MEAN_PIXEL", config.MEAN_PIXEL) in lines
    assert not any(line.split()[0] in ("display", "validate", "to_dict") for line in lines)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"IMAGE_MAX_DIM": 1000}, "IMAGE_MAX_DIM must be divisible by 64"),
        ({"IMAGE_RESIZE_MODE": "pad64", "IMAGE_MAX_DIM": 1000}, "divisible by 64"),
        ({"IMAGE_RESIZE_MODE": "crop", "IMAGE_MIN_DIM": 100}, "IMAGE_MIN_DIM must be divisible"),
        ({"NUM_CLASSES": 0}, "NUM_CLASSES must be an integer >= 1"),
        ({"NUM_CLASSES": 2.0}, "NUM_CLASSES"),
        ({"GPU_COUNT": 0}, "GPU_COUNT"),
        ({"IMAGES_PER_GPU": 0}, "IMAGES_PER_GPU"),
        ({"IMAGE_CHANNEL_COUNT": 1}, "MEAN_PIXEL has 3 values but IMAGE_CHANNEL_COUNT is 1"),
        ({"MEAN_PIXEL": np.array([1.0, 2.0])}, "MEAN_PIXEL has 2 values"),
        ({"IMAGE_RESIZE_MODE": "stretch"}, "IMAGE_RESIZE_MODE must be one of"),
        ({"IMAGE_MIN_DIM": 2048}, "larger than"),
        ({"BACKBONE": "resnet18"}, "BACKBONE must be"),
        ({"BACKBONE": lambda *a: None}, "COMPUTE_BACKBONE_SHAPE"),
        ({"RPN_ANCHOR_SCALES": (32, 64)}, "one scale per level"),
        ({"ROI_POSITIVE_RATIO": 0}, "ROI_POSITIVE_RATIO"),
        ({"DETECTION_MIN_CONFIDENCE": 1.5}, "DETECTION_MIN_CONFIDENCE"),
        ({"LOSS_WEIGHTS": {"mask_loss": 1.0}}, "unknown keys"),
        ({"DTYPE_POLICY": "bfloat16"}, "DTYPE_POLICY must be one of None, float32, mixed_"),
    ],
)
def test_invalid_settings_raise_value_error(overrides, message) -> None:
    with pytest.raises(ValueError, match=message) as info:
        _config(**overrides)
    assert "TestConfig" in str(info.value)


@pytest.mark.backend_agnostic
def test_valid_non_default_settings_are_accepted() -> None:
    config = _config(IMAGE_CHANNEL_COUNT=1, MEAN_PIXEL=np.array([110.0]),
                     IMAGE_RESIZE_MODE="none", IMAGE_MAX_DIM=1000,
                     BACKBONE="resnet50")
    assert config.IMAGE_SHAPE[-1] == 1
