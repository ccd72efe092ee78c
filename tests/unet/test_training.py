import csv
import json

import keras
import numpy as np
import pytest

from datasets import binary_samples
from datasets.synthetic import write_lungs
from unet import evaluation
from unet.data import BinaryMaskSequence
from unet.inference import predict_masks
from unet.model import UNet
from unet.training import cosine_learning_rate, cosine_schedule, describe, fit, load_run


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_small_unet_overfits_synthetic_lungs(tmp_path):
    # The on-disk Shenzhen layout through the adapter, at a size that is not the
    # model's: IoU is measured on the original 96x80 masks.
    write_lungs(str(tmp_path), n=8, size=(96, 80), layout="shenzhen", seed=0)
    samples = binary_samples("lungs", str(tmp_path), "all")
    assert len(samples) == 8
    model = UNet(base_filters=8, lr=3e-3).get_model((64, 64, 1))
    model.fit(BinaryMaskSequence(samples, (64, 64), batch_size=4, channels=1, seed=0),
              epochs=50, verbose=0)
    masks = predict_masks(model, [s.load_image() for s in samples])
    ious = [evaluation.iou(s.load_mask(), m) for s, m in zip(samples, masks)]
    assert all(m.shape == s.load_mask().shape for s, m in zip(samples, masks))
    assert np.mean(ious) > 0.9, ious


@pytest.mark.backend_agnostic
def test_fit_checkpoints_resumes_and_reloads(tmp_path, lung_samples, monkeypatch):
    samples = lung_samples(4, (40, 40))
    train = BinaryMaskSequence(samples[:2], (32, 32), batch_size=2)
    val = BinaryMaskSequence(samples[2:], (32, 32), batch_size=2, shuffle=False)
    run = tmp_path / "run"

    model = UNet(base_filters=4, dropout=0.1).get_model((32, 32, 3))
    first = fit(model, train, val, run, epochs=1, run_info={"dataset": "toy"}, verbose=0)
    assert first.epoch == [0]
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    assert (run / "best.weights.h5").is_file() and (run / "last.weights.h5").is_file()

    # A run killed while writing its weights (here: a full disk after half a file) keeps
    # the last complete checkpoint and state, and leaves no partial file behind.
    before = {name: (run / name).read_bytes()
              for name in ("best.weights.h5", "last.weights.h5", "state.json")}

    def half_written(self, path, *args, **kwargs):
        with open(path, "wb") as file:
            file.write(before["last.weights.h5"][:1000])
        raise OSError("No space left on device")

    interrupted = UNet(base_filters=4, dropout=0.1).get_model((32, 32, 3))
    with monkeypatch.context() as patch:
        patch.setattr(type(interrupted), "save_weights", half_written)
        with pytest.raises(OSError, match="No space left"):
            fit(interrupted, train, val, run, epochs=2, verbose=0)
    assert {name: (run / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in run.iterdir()) == [
        "best.weights.h5", "history.csv", "last.weights.h5", "run.json", "state.json"]

    again = UNet(base_filters=4, dropout=0.1, lr=3e-5).get_model((32, 32, 3))
    steps_done = int(model.optimizer.iterations)
    second = fit(again, train, val, run, epochs=2, verbose=0)
    assert second.epoch == [1]  # continued, not restarted
    assert int(again.optimizer.iterations) == 2 * steps_done  # Adam state came back
    assert float(again.optimizer.learning_rate) == pytest.approx(3e-5)  # the new lr
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 2
    assert state["best"] == max(first.history["val_mean_iou"] + second.history["val_mean_iou"])
    with open(run / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]

    info = json.loads((run / "run.json").read_text())
    assert info == {**describe(again), "dataset": "toy"}
    assert info["base_filters"] == 4 and info["dropout"] == 0.1
    with pytest.raises(ValueError, match="base_filters"):
        fit(UNet(base_filters=8).get_model((32, 32, 3)), train, val, run, epochs=3)
    reloaded = load_run(run, "last.weights.h5")
    x = val[0][0]
    np.testing.assert_allclose(reloaded.predict_on_batch(x), again.predict_on_batch(x),
                               atol=1e-5)


@pytest.mark.backend_agnostic
def test_encoder_batchnorm_is_recorded_and_runs_from_before_it_still_load(
        tmp_path, lung_samples):
    samples = lung_samples(4, (40, 40))
    train = BinaryMaskSequence(samples[:2], (32, 32), batch_size=2)
    val = BinaryMaskSequence(samples[2:], (32, 32), batch_size=2, shuffle=False)
    x = val[0][0]

    bn_run = tmp_path / "bn"
    model = UNet(base_filters=4, encoder_batchnorm=True).get_model((32, 32, 3))
    fit(model, train, val, bn_run, epochs=1, verbose=0)
    assert json.loads((bn_run / "run.json").read_text())["encoder_batchnorm"] is True
    reloaded = load_run(bn_run, "last.weights.h5")
    assert "block3_conv2_bn" in {layer.name for layer in reloaded.layers}
    np.testing.assert_allclose(reloaded.predict_on_batch(x), model.predict_on_batch(x),
                               atol=1e-5)
    with pytest.raises(ValueError, match="encoder_batchnorm"):
        fit(UNet(base_filters=4).get_model((32, 32, 3)), train, val, bn_run, epochs=2)

    # A run.json written before the option existed has no key: a plain encoder.
    old_run = tmp_path / "old"
    fit(UNet(base_filters=4).get_model((32, 32, 3)), train, val, old_run, epochs=1,
        verbose=0)
    info = json.loads((old_run / "run.json").read_text())
    del info["encoder_batchnorm"]
    (old_run / "run.json").write_text(json.dumps(info))
    assert "block1_conv1_bn" not in {layer.name for layer in load_run(old_run).layers}
    resumed = fit(UNet(base_filters=4).get_model((32, 32, 3)), train, val, old_run,
                  epochs=2, verbose=0)
    assert resumed.epoch == [1]


@pytest.mark.backend_agnostic
def test_dtype_policy_is_recorded_resumed_and_rebuilt(tmp_path, lung_samples):
    samples = lung_samples(4, (40, 40))
    train = BinaryMaskSequence(samples[:2], (32, 32), batch_size=2)
    val = BinaryMaskSequence(samples[2:], (32, 32), batch_size=2, shuffle=False)
    x = val[0][0]
    with pytest.raises(ValueError, match="dtype_policy must be one of"):
        UNet(dtype_policy="bfloat16")

    run = tmp_path / "mixed"
    model = UNet(base_filters=4, dtype_policy="mixed_bfloat16").get_model((32, 32, 3))
    assert keras.config.dtype_policy().name == "float32"  # the global policy untouched
    assert model.get_layer("block2_conv1").compute_dtype == "bfloat16"
    assert {keras.backend.standardize_dtype(w.dtype) for w in model.weights} == {"float32"}
    assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
    history = fit(model, train, val, run, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert json.loads((run / "run.json").read_text())["dtype_policy"] == "mixed_bfloat16"
    reloaded = load_run(run, "last.weights.h5")
    assert reloaded.get_layer("block2_conv1").compute_dtype == "bfloat16"
    np.testing.assert_allclose(reloaded.predict_on_batch(x), model.predict_on_batch(x),
                               atol=1e-5)
    with pytest.raises(ValueError, match="dtype_policy"):
        fit(UNet(base_filters=4).get_model((32, 32, 3)), train, val, run, epochs=2)
    # Runs written before the option recorded nothing: float32.
    info = json.loads((run / "run.json").read_text())
    info.pop("dtype_policy")
    (run / "run.json").write_text(json.dumps(info))
    assert load_run(run, "last.weights.h5").get_layer("block2_conv1").compute_dtype == "float32"


def test_load_run_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="run.json"):
        load_run(tmp_path)


def test_cosine_learning_rate():
    rates = [cosine_learning_rate(1e-3, 4, epoch) for epoch in range(6)]
    assert rates[0] == pytest.approx(1e-3) and rates[2] == pytest.approx(5e-4)
    assert rates[1] == pytest.approx(1e-3 * (1 + np.cos(np.pi / 4)) / 2)
    assert rates[4] == rates[5] == pytest.approx(0.0)  # stays at the end past `epochs`
    assert all(a > b for a, b in zip(rates[:4], rates[1:5]))
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        cosine_schedule(1e-3, 0)
