"""mrcnn.export: COCO results and SIIM submissions decode back to the masks written."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from datasets import rle, siim
from mrcnn import export, utils
from mrcnn.dataset import Dataset

pytestmark = [
    pytest.mark.backend_agnostic,
    # pycocotools' decode predates numpy 2's __array__(copy=...) protocol.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

H, W = 30, 40


class TwoSourceDataset(Dataset):
    """Images of two sources whose own class ids (7; 3) differ from the internal ones."""

    def __init__(self, image_ids: list[tuple[str, str]]):
        super().__init__()
        self.add_class("xray", 7, "lung")
        self.add_class("derm", 3, "lesion")
        for source, image_id in image_ids:
            self.add_image(source, image_id=image_id, path="")
        self.prepare()


def blobs(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((H, W, count), bool)
    for i in range(count):
        y, x = rng.integers(0, 20, 2)
        masks[y:y + rng.integers(3, 10), x:x + rng.integers(3, 15), i] = True
        masks[y, x + 1, i] = False  # not a plain rectangle
    return masks


def detection(masks: np.ndarray, class_ids, scores) -> dict:
    return {"rois": utils.extract_bboxes(masks), "masks": masks,
            "class_ids": np.asarray(class_ids, np.int32),
            "scores": np.asarray(scores, np.float32)}


def test_encode_masks_round_trip():
    masks = blobs(0, 3)
    encoded = export.encode_masks(masks)
    assert all(isinstance(r["counts"], str) and r["size"] == [H, W] for r in encoded)
    json.dumps(encoded)  # plain JSON types only
    decoded = mask_utils.decode([dict(r, counts=r["counts"].encode()) for r in encoded])
    np.testing.assert_array_equal(decoded.astype(bool), masks)
    assert export.encode_masks(np.zeros((H, W, 0), bool)) == []
    # Probabilities are binarised at 0.5, as everywhere in the library.
    soft = export.encode_masks(masks[..., :1] * 0.7 + 0.1)[0]
    assert mask_utils.area(dict(soft, counts=soft["counts"].encode())) == masks[..., 0].sum()


def test_coco_results_map_ids_to_the_sources_and_round_trip(tmp_path):
    dataset = TwoSourceDataset([("xray", "CHNCXR_0001_0"), ("derm", "ISIC_0000000")])
    lung, lesion = blobs(1, 2), blobs(2, 1)
    detections = [detection(lung, [1, 1], [0.9, 0.6]), detection(lesion, [2], [0.8])]
    results = export.write_coco_results(tmp_path / "out" / "results.json", dataset,
                                        detections)
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == results
    assert [(r["image_id"], r["category_id"]) for r in results] == [
        ("CHNCXR_0001_0", 7), ("CHNCXR_0001_0", 7), ("ISIC_0000000", 3)]
    assert [r["score"] for r in results] == pytest.approx([0.9, 0.6, 0.8])
    y1, x1, y2, x2 = detections[0]["rois"][1]
    assert results[1]["bbox"] == [x1, y1, x2 - x1, y2 - y1]
    assert results[2]["area"] == lesion.sum()
    decoded = [mask_utils.decode(dict(r["segmentation"], counts=r["segmentation"]["counts"]
                                      .encode())).astype(bool) for r in results]
    for got, want in zip(decoded, [lung[..., 0], lung[..., 1], lesion[..., 0]]):
        np.testing.assert_array_equal(got, want)


def test_coco_results_load_into_pycocotools(tmp_path):
    dataset = TwoSourceDataset([("xray", "a")])
    masks = blobs(3, 2)
    path = tmp_path / "results.json"
    export.write_coco_results(path, dataset, [detection(masks, [1, 1], [0.9, 0.5])])
    gt = COCO()
    gt.dataset = {"images": [{"id": "a", "height": H, "width": W}],
                  "categories": [{"id": 7, "name": "lung"}], "annotations": []}
    gt.createIndex()
    loaded = gt.loadRes(str(path))
    assert len(loaded.getAnnIds(imgIds=["a"], catIds=[7])) == 2


def test_numpy_image_ids_are_written_as_plain_numbers(tmp_path):
    dataset = TwoSourceDataset([("xray", np.int64(42))])
    results = export.write_coco_results(tmp_path / "r.json", dataset,
                                        [detection(blobs(9, 1), [1], [0.9])])
    assert type(results[0]["image_id"]) is int
    assert json.loads((tmp_path / "r.json").read_text())[0]["image_id"] == 42


def test_coco_results_reject_misaligned_or_foreign_input():
    dataset = TwoSourceDataset([("xray", "a")])
    masks = blobs(4, 1)
    with pytest.raises(ValueError, match="2 detection dicts for 1 image_ids"):
        export.coco_results(dataset, [detection(masks, [1], [0.9])] * 2)
    with pytest.raises(ValueError, match="class 2 belongs to source 'derm'"):
        export.coco_results(dataset, [detection(masks, [2], [0.9])])
    with pytest.raises(ValueError, match="scores has 2 entries but masks has 1"):
        export.coco_annotations("a", masks, [1], scores=[0.1, 0.2])


def test_siim_submission_union_rows_decode_with_the_dataset_reader(tmp_path):
    ids = [("xray", "1.2.276.0.1"), ("xray", "1.2.276.0.2"), ("xray", "1.2.276.0.3")]
    dataset = TwoSourceDataset(ids)
    two = blobs(5, 2)
    detections = [detection(two, [1, 1], [0.9, 0.8]),
                  detection(np.zeros((H, W, 0), bool), [], []),
                  detection(blobs(6, 1), [1], [0.3])]
    path = tmp_path / "submission.csv"
    count = export.write_siim_submission(path, dataset, detections, min_score=0.5)
    assert count == 3
    assert path.read_text().splitlines()[0] == "ImageId,EncodedPixels"
    table = siim.read_rle_csv(str(path))
    assert table["1.2.276.0.2"] == [] and table["1.2.276.0.3"] == []  # "-1" rows
    (union,) = table["1.2.276.0.1"]
    np.testing.assert_array_equal(rle.decode(union, H, W), two.any(axis=-1))


def test_siim_rows_per_instance_and_custom_encoder():
    masks = blobs(7, 3)
    rows = export.siim_rows("img", masks, per_instance=True)
    assert [r[0] for r in rows] == ["img"] * 3
    for (_, text), i in zip(rows, range(3)):
        np.testing.assert_array_equal(rle.decode(text, H, W), masks[..., i])
    sizes = export.siim_rows("img", masks, encode=lambda m: str(int(m.sum())))
    assert sizes == [("img", str(masks.any(axis=-1).sum()))]
    empty_mask = np.zeros((H, W, 1), bool)
    assert export.siim_rows("img", empty_mask, per_instance=True) == [("img", "-1")]
    with pytest.raises(ValueError, match="img: 1 scores for 3 masks"):
        export.siim_rows("img", masks, scores=[0.9])


def test_siim_encoder_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not on sys.path
    with pytest.raises(ImportError, match="run from the repository root.*encode="):
        export.siim_rows("img", blobs(8, 1))
    assert export.siim_rows("img", blobs(8, 1), encode=lambda m: "1 2") == [("img", "1 2")]


@pytest.mark.shared_data
def test_siim_submission_of_the_real_sample_reproduces_its_csv(shared_data, tmp_path):
    folder = shared_data / "siim" / "sample"
    dataset = siim.SIIMDataset()
    dataset.load_siim(str(folder), "all")
    dataset.prepare()
    detections = []
    for image_id in dataset.image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        detections.append(detection(masks, class_ids, np.ones(len(class_ids))))
    path = tmp_path / "submission.csv"
    export.write_siim_submission(path, dataset, detections)
    ours = siim.read_rle_csv(str(path))
    theirs = siim.read_rle_csv(str(folder / "train-rle-sample.csv"))
    assert set(ours) == {info["id"] for info in dataset.image_info}
    assert sum(1 for runs in ours.values() if runs) == 3  # the positives, as PROVENANCE
    for image_id, runs in ours.items():
        want = np.zeros((1024, 1024), bool)
        for text in theirs[image_id]:
            want |= rle.decode(text, 1024, 1024)
        got = rle.decode(runs[0], 1024, 1024) if runs else np.zeros_like(want)
        np.testing.assert_array_equal(got, want, err_msg=image_id)
