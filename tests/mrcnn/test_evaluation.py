"""mrcnn.evaluation on hand-made detections whose scores are known by construction."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from skimage.io import imread  # noqa: E402

from mrcnn import evaluation, utils  # noqa: E402
from mrcnn.dataset import Dataset  # noqa: E402
from unet import evaluation as unet_evaluation  # noqa: E402

pytestmark = pytest.mark.backend_agnostic

H, W = 40, 50


class MemoryDataset(Dataset):
    """Ground-truth masks held in memory, one class "thing"."""

    def __init__(self, gt_masks: list[np.ndarray]):
        super().__init__()
        self.add_class("mem", 1, "thing")
        for i, masks in enumerate(gt_masks):
            self.add_image("mem", image_id=f"img{i}", path="", masks=masks)
        self.prepare()

    def load_mask(self, image_id):
        masks = self.image_info[image_id]["masks"]
        return masks, np.ones(masks.shape[-1], np.int32)


def rect(y1, x1, y2, x2) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def stack(*masks) -> np.ndarray:
    return np.stack(masks, axis=-1) if masks else np.zeros((H, W, 0), bool)


def detection(masks: np.ndarray, scores) -> dict:
    return {"rois": utils.extract_bboxes(masks), "masks": masks,
            "class_ids": np.ones(masks.shape[-1], np.int32),
            "scores": np.asarray(scores, np.float32)}


def test_perfect_detection_scores_one_everywhere(tmp_path):
    gt = stack(rect(5, 5, 20, 20), rect(22, 25, 35, 45))
    dataset = MemoryDataset([gt])
    report = evaluation.evaluate(tmp_path / "r.json", dataset, [detection(gt, [0.9, 0.8])])
    row = report["images"][0]
    assert row["id"] == "img0"
    for key in ("iou", "dice", "isic_jaccard", "max_iou", "ap50"):
        assert row[key] == 1.0, key
    assert (row["gt_instances"], row["detections"]) == (2, 2)
    # COCOeval sums 101 interpolated precisions: 1.0 up to float rounding.
    assert report["coco"] == pytest.approx({"AP": 1.0, "AP50": 1.0, "AP75": 1.0})
    assert report["pr_curve"]["ap"] == 1.0
    assert report["summary"]["mean_ap50"] == 1.0 and report["summary"]["count"] == 1
    assert json.loads((tmp_path / "r.json").read_text()) == report


def test_a_miss_scores_zero(tmp_path):
    gt = stack(rect(5, 5, 20, 20))
    miss = stack(rect(25, 30, 38, 48))
    report = evaluation.evaluate(tmp_path / "r.json", MemoryDataset([gt]),
                                 [detection(miss, [0.99])])
    row = report["images"][0]
    assert row["iou"] == row["dice"] == row["max_iou"] == row["ap50"] == 0.0
    assert report["coco"] == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    assert report["pr_curve"]["ap"] == 0.0


def test_no_detection_on_an_image_with_ground_truth(tmp_path):
    gt = stack(rect(5, 5, 20, 20))
    report = evaluation.evaluate(tmp_path / "r.json", MemoryDataset([gt]),
                                 [detection(stack(), [])])
    row = report["images"][0]
    assert row["iou"] == row["max_iou"] == row["ap50"] == 0.0 and row["detections"] == 0
    assert report["coco"]["AP"] == 0.0


def test_empty_images_follow_the_siim_rule(tmp_path):
    """Empty truth predicted empty scores 1 (Dice, IoU, AP); a false alarm scores 0."""
    dataset = MemoryDataset([stack(), stack(), stack(rect(5, 5, 20, 20))])
    detections = [detection(stack(), []), detection(stack(rect(1, 1, 9, 9)), [0.8]),
                  detection(stack(rect(5, 5, 20, 20)), [0.9])]
    report = evaluation.evaluate(tmp_path / "r.json", dataset, detections)
    dice = [r["dice"] for r in report["images"]]
    ap50 = [r["ap50"] for r in report["images"]]
    assert dice == [1.0, 0.0, 1.0] and ap50 == [1.0, 0.0, 1.0]
    assert report["summary"]["mean_dice"] == pytest.approx(2 / 3)  # the SIIM score
    assert report["map50_images_with_gt"] == 1.0
    # COCO counts the false alarm as a detection ranked below the hit: AP stays 1.
    assert report["coco"]["AP50"] == pytest.approx(1.0)


def test_no_ground_truth_anywhere_leaves_dataset_metrics_undefined(tmp_path):
    report = evaluation.evaluate(tmp_path / "r.json", MemoryDataset([stack()]),
                                 [detection(stack(rect(1, 1, 9, 9)), [0.8])])
    assert report["coco"] == {"AP": None, "AP50": None, "AP75": None}
    assert report["pr_curve"] is None and report["map50_images_with_gt"] is None


def test_coco_ap_of_a_shifted_mask_is_below_one(tmp_path):
    gt = stack(rect(5, 5, 25, 25))
    shifted = stack(rect(5, 9, 25, 29))  # IoU 320 / 480 = 0.667
    report = evaluation.evaluate(tmp_path / "r.json", MemoryDataset([gt]),
                                 [detection(shifted, [0.9])])
    coco = report["coco"]
    assert coco["AP50"] == pytest.approx(1.0) and coco["AP75"] == 0.0
    # Matched at thresholds 0.50 .. 0.65: 4 of COCO's 10.
    assert coco["AP"] == pytest.approx(0.4)
    assert report["images"][0]["iou"] == pytest.approx(2 / 3)


def test_max_iou_is_the_best_single_instance_union_iou_the_whole():
    gt = stack(rect(10, 10, 30, 30))
    pieces = stack(rect(10, 10, 30, 18), rect(10, 18, 30, 30))  # IoU 0.4 and 0.6
    row = evaluation.score_image(gt, np.array([1]), detection(pieces, [0.9, 0.8]))
    assert row["iou"] == 1.0 and row["max_iou"] == pytest.approx(0.6)
    # The top-scored piece misses, the second hits: precision 1/2 at recall 1.
    assert row["ap50"] == 0.5


def test_max_iou_pairs_instances_not_unions():
    lungs = stack(rect(5, 5, 35, 20), rect(5, 28, 35, 45))
    right_only = stack(rect(5, 5, 35, 20))
    row = evaluation.score_image(lungs, np.ones(2), detection(right_only, [0.9]))
    assert row["max_iou"] == 1.0 and row["iou"] == pytest.approx(450 / 960)


def test_isic_jaccard_zeroes_scores_below_065():
    gt = stack(rect(10, 10, 30, 30))
    low = stack(rect(10, 10, 30, 22))  # IoU 0.6
    high = stack(rect(10, 10, 30, 27))  # IoU 0.85
    assert evaluation.score_image(gt, [1], detection(low, [0.9]))["isic_jaccard"] == 0.0
    row = evaluation.score_image(gt, [1], detection(high, [0.9]))
    assert row["isic_jaccard"] == row["iou"] == pytest.approx(0.85)


def test_ap50_matches_utils_compute_ap_on_a_random_case():
    rng = np.random.default_rng(7)
    gt = stack(*(rect(*corner, corner[0] + 8, corner[1] + 9)
                 for corner in rng.integers(0, 30, (4, 2))))
    pred = stack(*(rect(*corner, corner[0] + 9, corner[1] + 8)
                   for corner in rng.integers(0, 30, (6, 2))))
    pred[..., :3] = gt[..., :3]  # three sure hits among the guesses
    result = detection(pred, rng.uniform(0.5, 1.0, 6))
    expected = utils.compute_ap(utils.extract_bboxes(gt), np.ones(4, np.int32), gt,
                                result["rois"], result["class_ids"], result["scores"],
                                pred)[0]
    assert 0.0 < expected < 1.0
    assert evaluation.score_image(gt, np.ones(4), result)["ap50"] == pytest.approx(expected)


def test_pr_curve_pools_detections_of_all_images_by_score(tmp_path):
    gt_a, gt_b = stack(rect(5, 5, 20, 20)), stack(rect(20, 20, 35, 40))
    detections = [detection(gt_a, [0.9]),
                  detection(stack(rect(0, 40, 10, 50), rect(20, 20, 35, 40)), [0.8, 0.7])]
    report = evaluation.evaluate(tmp_path / "r.json", MemoryDataset([gt_a, gt_b]),
                                 detections)
    curve = report["pr_curve"]
    # Ranked: hit (0.9), miss (0.8), hit (0.7): recall 0.5, 0.5, 1; envelope 1, 2/3, 2/3.
    assert curve["recalls"] == pytest.approx([0, 0.5, 0.5, 1, 1])
    assert curve["precisions"] == pytest.approx([1, 1, 2 / 3, 2 / 3, 0])
    assert curve["ap"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert [r["ap50"] for r in report["images"]] == [1.0, 0.5]


def test_report_extra_context_and_image_subset(tmp_path):
    gts = [stack(rect(5, 5, 20, 20)), stack(rect(1, 1, 4, 4))]
    report = evaluation.evaluate(tmp_path / "sub" / "r.json", MemoryDataset(gts),
                                 [detection(gts[1], [0.9])], image_ids=[1],
                                 command="evaluate", weights="last")
    assert [r["id"] for r in report["images"]] == ["img1"]
    assert report["command"] == "evaluate" and report["iou_threshold"] == 0.5
    assert (tmp_path / "sub" / "r.json").exists()


def test_bad_input_names_the_problem(tmp_path):
    dataset = MemoryDataset([stack(rect(5, 5, 20, 20))])
    with pytest.raises(ValueError, match="2 detection dicts for 1 image_ids"):
        evaluation.evaluate(tmp_path / "r.json", dataset, [detection(stack(), [])] * 2)
    with pytest.raises(ValueError, match=r"lacks \['masks'\]"):
        evaluation.evaluate(tmp_path / "r.json", dataset,
                            [{"rois": np.zeros((0, 4)), "class_ids": [], "scores": []}])
    wrong_size = detection(np.ones((20, 20, 1), bool), [0.9])
    with pytest.raises(ValueError, match=r"image 'img0' \(internal id 0\).*\[H, W, N\]"):
        evaluation.evaluate(tmp_path / "r.json", dataset, [wrong_size])


def test_save_plots_for_mask_rcnn_and_unet_reports(tmp_path):
    gt = stack(rect(5, 5, 20, 20))
    report = evaluation.evaluate(tmp_path / "r.json", MemoryDataset([gt, gt]),
                                 [detection(gt, [0.9]), detection(stack(), [])])
    paths = evaluation.save_plots(report, tmp_path / "plots", prefix="mrcnn_")
    assert set(paths) == {"score_boxplot", "pr_curve"}
    assert paths["pr_curve"].name == "mrcnn_pr_curve.png"
    assert imread(paths["pr_curve"]).shape[:2] == (480, 640)
    assert imread(paths["score_boxplot"]).shape[:2] == (480, 680)  # 3 boxes
    unet_report = unet_evaluation.write_report(
        tmp_path / "u.json", [{"id": "a", **unet_evaluation.score(gt[..., 0], gt[..., 0])}])
    paths = evaluation.save_plots(unet_report, tmp_path / "plots", prefix="unet_")
    assert list(paths) == ["score_boxplot"] and paths["score_boxplot"].exists()


@pytest.mark.shared_data
def test_real_siim_sample_mean_dice_of_empty_predictions(shared_data, tmp_path):
    """Predicting "no pneumothorax" everywhere scores the share of negative images."""
    from datasets.siim import SIIMDataset

    dataset = SIIMDataset()
    dataset.load_siim(str(shared_data / "siim" / "sample"), "all")
    dataset.prepare()
    shape = dataset.load_mask(0)[0].shape[:2]
    empty = [detection(np.zeros(shape + (0,), bool), [])] * dataset.num_images
    report = evaluation.evaluate(tmp_path / "r.json", dataset, empty)
    negatives = sum(1 for r in report["images"] if r["gt_instances"] == 0)
    assert 0 < negatives < dataset.num_images
    assert report["summary"]["mean_dice"] == pytest.approx(negatives / dataset.num_images)
    assert report["coco"]["AP"] == 0.0 and report["pr_curve"]["ap"] == 0.0
