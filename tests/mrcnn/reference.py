"""Replay matterport's recorded input/output cases against this library.

``../shared/reference/matterport/utils_cases.json`` (+ ``.npz``) records one call of
a matterport numpy function per case (see that folder's README, section 1). This
module rebuilds the arguments, the config and the RNG state of each case and
compares a result with the recorded outputs under the README's tolerance rules.

Usage::

    from tests.mrcnn.reference import cases, assert_outputs_match

    @pytest.mark.parametrize("case", cases("compose_image_meta"), ids=str)
    def test_compose_image_meta(case):
        result = case.run(data.compose_image_meta)   # seeds the RNG, then calls
        assert_outputs_match(case, result)

API:
    cases(function=None, module=None) -> list[Case]   all cases, or those of one
        function name as recorded ("compute_ap", "MaskRCNN.mold_inputs", ...).
        Empty when the reference folder is absent (a clone without ../shared).
    Case.id, .function, .module, .raises (str | None), .deterministic (bool),
        .tie_dependent (bool), .spec (the raw JSON entry, for extra fields such as
        `counts`, `num_fg`, `image_shape`).
    Case.inputs() -> dict name -> value, rebuilt with the recorded Python types
        (tuple, list, int, float, None, dict, list of arrays). Fresh copies each call.
    Case.args(**given) / Case.kwargs(**given): positional and keyword arguments
        following the recorded `call` text. Parameters that are not recorded
        inputs ("self", "dataset") must be passed in `given`, or "self" is left out;
        "config" is `Case.config()` unless given.
    Case.config() -> Config | None: a subclass of the recorded base with the
        overrides as class attributes, instantiated.
    Case.seed_rng(): seeds Python `random` / NumPy's global RNG as recorded.
    Case.run(fn, **given): seed_rng() then fn(*args, **kwargs).
    Case.expected() -> list of the recorded outputs, rebuilt like inputs.
    assert_outputs_match(case, result): result is the function's return value
        (a tuple for several outputs). Exact for ints and bools, rtol 1e-7 for
        float64, rtol = atol = 1e-6 for float32, +-1 for resized uint8 images,
        NaN where the golden has NaN; Python types (tuple, list, int scale, None)
        and dtypes are checked too. tie_dependent cases also accept the recorded
        stable-tiebreak alternative. deterministic: false cases compare only
        types, shapes and dtypes: the caller checks the function's invariants.

The folder is ``$MEDSEG_SHARED/reference/matterport`` (default ``../shared``
beside the repository), as in tests/conftest.py.
"""
from __future__ import annotations

import ast
import functools
import importlib
import json
import numbers
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

REFERENCE_DIR = (
    Path(os.environ.get("MEDSEG_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
    / "reference" / "matterport"
)

# (function, output name) pairs that are bilinearly resized images, or computed from
# one: the README allows +-1 for them when they are integers (uint8); float outputs
# keep the float tolerances.
_RESIZED_IMAGE_OUTPUTS = {
    ("resize_image", "image"),
    ("load_image_gt", "image"),
    ("MaskRCNN.mold_inputs", "molded_images"),
}


@functools.lru_cache(maxsize=1)
def _load() -> tuple[list[dict], dict[str, np.ndarray]]:
    spec_path = REFERENCE_DIR / "utils_cases.json"
    with open(spec_path) as f:
        spec = json.load(f)
    with np.load(REFERENCE_DIR / spec["npz_file"], allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    return spec["cases"], arrays


def cases(function: str | None = None, module: str | None = None) -> list["Case"]:
    """Recorded cases, optionally of one function and/or module; [] without the folder."""
    if not (REFERENCE_DIR / "utils_cases.json").is_file():
        return []
    specs, _ = _load()
    return [
        Case(s)
        for s in specs
        if (function is None or s["function"] == function)
        and (module is None or s["module"] == module)
    ]


def _rebuild(entry: dict) -> Any:
    kind = entry["kind"]
    if kind == "none":
        return None
    if kind == "value":
        return entry["value"]
    if kind == "dict":
        prefix = entry["name"] + "."
        return {sub["name"][len(prefix):]: _rebuild(sub) for sub in entry["entries"]}
    if kind == "list":
        return [_rebuild(item) for item in entry["items"]]
    if kind != "array":
        raise ValueError(f"unknown entry kind {kind!r} in {entry['name']}")
    array = _load()[1][entry["key"]].copy()
    python_type = entry["python_type"]
    if python_type == "tuple":
        return tuple(array.tolist())
    if python_type == "list":
        return array.tolist()
    if python_type == "int":
        return int(array)
    if python_type == "float":
        return float(array)
    if python_type == "bool":
        return bool(array)
    if python_type.startswith("numpy."):
        return getattr(np, python_type.split(".", 1)[1])(array)
    return array


def _import(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


_CALL = re.compile(r"^[\w.]+\((?P<params>.*?)\)")


@dataclass(frozen=True)
class Case:
    """One recorded call; see the module docstring."""

    spec: dict

    def __str__(self) -> str:
        return self.id

    @property
    def id(self) -> str:
        return self.spec["case_id"]

    @property
    def function(self) -> str:
        return self.spec["function"]

    @property
    def module(self) -> str:
        return self.spec["module"]

    @property
    def raises(self) -> str | None:
        return self.spec.get("raises")

    @property
    def deterministic(self) -> bool:
        return self.spec.get("deterministic", True)

    @property
    def tie_dependent(self) -> bool:
        return self.spec.get("tie_dependent", False)

    def inputs(self) -> dict[str, Any]:
        return {e["name"]: _rebuild(e) for e in self.spec["inputs"]}

    def expected(self) -> list[Any]:
        return [_rebuild(e) for e in self.spec["outputs"]]

    def config(self) -> Any:
        cfg = self.spec.get("config")
        if cfg is None:
            return None
        base = _import(cfg["base"])
        overrides = {}
        for name, value in cfg["overrides"].items():
            # JSON turned tuples such as MINI_MASK_SHAPE into lists; restore the
            # base class's type so the config is the one matterport saw.
            if isinstance(value, list) and isinstance(getattr(base, name, None), tuple):
                value = tuple(value)
            overrides[name] = value
        return type("ReferenceConfig", (base,), overrides)()

    def seed_rng(self) -> None:
        rng = self.spec.get("rng") or {}
        if "python_random.seed" in rng:
            random.seed(rng["python_random.seed"])
        if "numpy_global_seed" in rng:
            np.random.seed(rng["numpy_global_seed"])

    def _arguments(self, given: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        inputs = self.inputs()
        call = self.spec["call"]
        if call.startswith("positional"):
            return list(inputs.values()), {}
        match = _CALL.match(call)
        if match is None:
            raise ValueError(f"case {self.id}: cannot read call text {call!r}")
        params = [p.strip() for p in match.group("params").split(",") if p.strip()]
        named = {p.split("=", 1)[0] for p in params}
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param in params:
            name, eq, default = (s.strip() for s in param.partition("="))
            if name == "...":
                # every recorded input the call text does not name, in order
                args.extend(v for k, v in inputs.items() if k not in named)
                continue
            if name in given:
                value = given[name]
            elif name in inputs:
                value = inputs[name]
            elif name == "config":
                value = self.config()
            elif name == "self":
                continue
            elif eq and default:
                value = ast.literal_eval(default)
            else:
                raise ValueError(
                    f"case {self.id}: parameter {name!r} is not recorded; pass it as {name}=..."
                )
            if eq:
                kwargs[name] = value
            else:
                args.append(value)
        return args, kwargs

    def args(self, **given: Any) -> list[Any]:
        return self._arguments(given)[0]

    def kwargs(self, **given: Any) -> dict[str, Any]:
        return self._arguments(given)[1]

    def run(self, fn: Callable[..., Any], **given: Any) -> Any:
        args, kwargs = self._arguments(given)
        self.seed_rng()
        return fn(*args, **kwargs)


def _alternatives(case: Case, index: int, entry: dict, expected: Any) -> list[Any]:
    options = [expected]
    if not case.tie_dependent:
        return options
    name = entry["name"]
    stable = case.spec.get("with_stable_tiebreak") or {}
    if name in stable:
        options.append(np.asarray(stable[name], dtype=entry.get("dtype")))
    if "pick_with_stable_tiebreak" in case.spec and index == 0:
        options.append(np.asarray(case.spec["pick_with_stable_tiebreak"], dtype=entry.get("dtype")))
    return options


def _check_python_type(where: str, entry: dict, actual: Any) -> None:
    python_type = entry["python_type"]
    checks = {
        "ndarray": lambda v: isinstance(v, np.ndarray),
        "tuple": lambda v: isinstance(v, tuple),
        "list": lambda v: isinstance(v, list),
        "int": lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral),
        "bool": lambda v: isinstance(v, (bool, np.bool_)),
        "NoneType": lambda v: v is None,
        "dict": lambda v: isinstance(v, dict),
    }
    if python_type.startswith("numpy."):
        ok = isinstance(actual, (np.generic, np.ndarray)) and np.ndim(actual) == 0
    else:
        ok = checks.get(python_type, lambda v: True)(actual)
    assert ok, f"{where}: expected a {python_type}, got {type(actual).__name__}: {actual!r}"


def _compare_values(case: Case, where: str, entry: dict, expected: Any, actual: Any) -> None:
    exp = np.asarray(expected)
    act = np.asarray(actual)
    assert act.shape == exp.shape, f"{where}: shape {act.shape} != recorded {exp.shape}"
    if entry["python_type"] == "ndarray" or entry["python_type"].startswith("numpy."):
        assert act.dtype == exp.dtype, f"{where}: dtype {act.dtype} != recorded {exp.dtype}"
    if not case.deterministic:
        return
    if (case.function, entry["name"]) in _RESIZED_IMAGE_OUTPUTS and exp.dtype.kind in "iu":
        diff = np.abs(act.astype(np.float64) - exp.astype(np.float64))
        assert diff.size == 0 or diff.max() <= 1.0, f"{where}: off by up to {diff.max()} (> 1)"
    elif exp.dtype.kind in "biuU" or exp.dtype == object:
        np.testing.assert_array_equal(act, exp, err_msg=where)
    elif exp.dtype == np.float32:
        np.testing.assert_allclose(act, exp, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=where)
    else:
        # atol 1e-12 only absorbs summation-order noise around exact zeros.
        np.testing.assert_allclose(act, exp, rtol=1e-7, atol=1e-12, equal_nan=True, err_msg=where)


def _match_entry(case: Case, index: int, entry: dict, expected: Any, actual: Any) -> None:
    where = f"{case.id}: output {entry['name']!r}"
    _check_python_type(where, entry, actual)
    kind = entry["kind"]
    if kind == "none":
        return
    if kind == "value":
        assert actual == expected, f"{where}: {actual!r} != recorded {expected!r}"
        return
    if kind == "dict":
        assert set(actual) == set(expected), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        prefix = entry["name"] + "."
        for sub in entry["entries"]:
            key = sub["name"][len(prefix):]
            _match_entry(case, index, sub, expected[key], actual[key])
        return
    if kind == "list":
        assert len(actual) == len(expected), f"{where}: {len(actual)} items != {len(expected)}"
        for item, exp, act in zip(entry["items"], expected, actual):
            _match_entry(case, index, item, exp, act)
        return
    errors = []
    for option in _alternatives(case, index, entry, expected):
        try:
            _compare_values(case, where, entry, option, actual)
            return
        except AssertionError as error:
            errors.append(str(error))
    raise AssertionError("\n".join(errors))


def assert_outputs_match(case: Case, result: Any) -> None:
    """Assert that `result` (the function's return value) matches the recorded outputs."""
    entries = case.spec["outputs"]
    expected = case.expected()
    if len(entries) == 1:
        results = [result]
    else:
        assert isinstance(result, (tuple, list)) and len(result) == len(entries), (
            f"{case.id}: expected {len(entries)} outputs "
            f"({', '.join(e['name'] for e in entries)}), got {type(result).__name__}"
        )
        results = list(result)
    for index, (entry, exp, act) in enumerate(zip(entries, expected, results)):
        _match_entry(case, index, entry, exp, act)
