"""mrcnn.visualize: every function draws headless, saves a PNG of the figure's size and
paints what it was given where it was given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot: these tests are the headless case

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from skimage.io import imread  # noqa: E402

from mrcnn import visualize  # noqa: E402

pytestmark = pytest.mark.backend_agnostic

CLASS_NAMES = ["BG", "lung", "heart"]
DPI = 100  # matplotlib's default figure dpi: a PNG is figsize * 100 pixels


@pytest.fixture(autouse=True)
def no_show_and_no_leaks(monkeypatch):
    """Fail if anything calls plt.show() under Agg, or leaves a figure open."""
    def show(*args, **kwargs):
        raise AssertionError("plt.show() called on a non-interactive backend")

    monkeypatch.setattr(plt, "show", show)
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) <= before


@pytest.fixture
def scene():
    """A 60x80 grey image with two instances: a rectangle (lung) and a disc (heart)."""
    image = np.full((60, 80, 3), 40, np.uint8)
    masks = np.zeros((60, 80, 2), bool)
    masks[10:30, 8:36, 0] = True
    yy, xx = np.mgrid[:60, :80]
    masks[..., 1] = (yy - 40) ** 2 + (xx - 58) ** 2 <= 9 ** 2
    boxes = np.array([[10, 8, 30, 36], [31, 49, 50, 68]], np.int32)
    return image, boxes, masks, np.array([1, 2], np.int32)


def _png(path) -> np.ndarray:
    assert path.exists() and path.stat().st_size > 0
    return imread(path)[..., :3].astype(int)


def _pixel(fig, x: float, y: float) -> tuple[int, int]:
    """(row, col) in the saved PNG of data point (x, y) of the figure's first axes."""
    dx, dy = fig.axes[0].transData.transform((x, y))
    height = int(round(fig.get_figheight() * DPI))
    return int(height - dy), int(dx)


def test_random_colors_seeded_reproducible_and_distinct():
    first = visualize.random_colors(6, seed=3)
    assert first == visualize.random_colors(6, seed=3)
    assert first != visualize.random_colors(6, seed=4)
    assert len(set(first)) == 6
    assert all(0.0 <= c <= 1.0 for color in first for c in color)
    dark = visualize.random_colors(4, bright=False, seed=0)
    assert max(max(color) for color in dark) == pytest.approx(0.7)


def test_apply_mask_blends_in_place_only_inside_the_mask():
    image = np.full((4, 5, 3), 100, np.uint8)
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    out = visualize.apply_mask(image, mask, (1.0, 0.0, 0.0), alpha=0.5)
    assert out is image
    np.testing.assert_array_equal(image[1, 2], [177, 50, 50])  # 0.5*100 + 0.5*255
    np.testing.assert_array_equal(image[0, 0], [100, 100, 100])
    assert np.count_nonzero(image[..., 1] == 50) == 4


def test_apply_mask_rejects_a_mask_of_another_size():
    with pytest.raises(ValueError, match=r"mask has shape \(3, 3\)"):
        visualize.apply_mask(np.zeros((4, 4, 3)), np.ones((3, 3), bool), (1, 0, 0))


def test_display_instances_png_size_and_tint_under_the_mask(scene, tmp_path):
    image, boxes, masks, class_ids = scene
    common = dict(scores=np.array([0.9, 0.8]), figsize=(4, 3), show_bbox=False, seed=0)
    fig = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                      save_path=tmp_path / "masks.png", **common)
    visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                show_mask=False, save_path=tmp_path / "plain.png", **common)
    tinted, plain = _png(tmp_path / "masks.png"), _png(tmp_path / "plain.png")
    assert tinted.shape == (300, 400, 3)
    inside_rect = _pixel(fig, 28, 24)  # inside mask 0, away from its caption
    inside_disc = _pixel(fig, 58, 40)
    background = _pixel(fig, 70, 8)
    for row, col in (inside_rect, inside_disc):
        assert np.abs(tinted[row, col] - plain[row, col]).sum() > 60
    np.testing.assert_array_equal(tinted[background], plain[background])
    np.testing.assert_allclose(plain[inside_rect], [40, 40, 40], atol=3)


def test_display_instances_boxes_and_captions_drawn(scene, tmp_path):
    image, boxes, masks, class_ids = scene
    fig = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                      scores=np.array([0.9, 0.25]), figsize=(4, 3),
                                      seed=0, save_path=tmp_path / "boxes.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["lung 0.900", "heart 0.250"]
    # Dashed boxes: two Rectangles; outlines: one Polygon per instance contour.
    kinds = [type(p).__name__ for p in fig.axes[0].patches]
    assert kinds.count("Rectangle") == 2 and kinds.count("Polygon") == 2


def test_display_instances_skips_padding_rows_and_draws_into_a_given_axes(scene):
    image, boxes, masks, class_ids = scene
    boxes = boxes.copy()
    boxes[1] = 0  # a padding row
    fig, ax = plt.subplots(figsize=(3, 3))
    try:
        returned = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                               ax=ax, captions=["a", "b"])
        assert returned is fig
        assert plt.fignum_exists(fig.number)  # the caller's figure is left open
        assert [t.get_text() for t in ax.texts] == ["a"]
    finally:
        plt.close(fig)


def test_display_instances_with_no_instances_shows_the_image(tmp_path):
    image = np.full((20, 30, 3), 200, np.uint8)
    fig = visualize.display_instances(image, np.zeros((0, 4)), np.zeros((20, 30, 0)),
                                      np.zeros(0, int), CLASS_NAMES, figsize=(3, 2),
                                      save_path=tmp_path / "empty.png")
    png = _png(tmp_path / "empty.png")
    assert png.shape == (200, 300, 3)
    np.testing.assert_allclose(png[_pixel(fig, 15, 10)], [200, 200, 200], atol=3)


def test_display_instances_rejects_mismatched_counts(scene):
    image, boxes, masks, class_ids = scene
    with pytest.raises(ValueError, match="masks describes 1 instances but boxes has 2"):
        visualize.display_instances(image, boxes, masks[..., :1], class_ids, CLASS_NAMES)
    with pytest.raises(ValueError, match="class_ids describes 3"):
        visualize.display_instances(image, boxes, masks, np.ones(3, int), CLASS_NAMES)


def test_display_differences_captions_score_and_iou(scene, tmp_path):
    image, boxes, masks, class_ids = scene
    # The lower-scored prediction is exact; the higher one is the disc, shifted 3 px.
    shifted = np.roll(masks[..., 1], 3, axis=1)
    pred_masks = np.stack([masks[..., 0], shifted], axis=-1)
    pred_boxes = np.array([[10, 8, 30, 36], [31, 52, 50, 71]])
    fig = visualize.display_differences(
        image, boxes, class_ids, masks, pred_boxes, class_ids, np.array([0.6, 0.95]),
        pred_masks, CLASS_NAMES, save_path=tmp_path / "diff.png")
    disc_iou = np.logical_and(shifted, masks[..., 1]).sum() / np.logical_or(
        shifted, masks[..., 1]).sum()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["", "", f"0.95 / {disc_iou:.2f}", "0.60 / 1.00"]
    assert _png(tmp_path / "diff.png").shape == (1600, 1600, 3)


def test_draw_box_frames_inside_the_box_and_clips():
    image = np.zeros((10, 12, 3), np.uint8)
    visualize.draw_box(image, (2, 3, 8, 9), (255, 0, 0))
    frame = image[..., 0] == 255
    assert frame[2, 3:9].all() and frame[7, 3:9].all()  # y2 is exclusive
    assert frame[2:8, 3].all() and frame[2:8, 8].all()
    assert frame[3, 4] and not frame[4, 5]  # 2 pixels thick, hollow
    assert not frame[:, 9:].any() and not frame[8:].any()
    visualize.draw_box(image, (-5, -5, 3, 3), (0, 255, 0))
    assert image[0, 0, 1] == 255 and image[2, 2, 1] == 255


def test_display_images_grid_and_size(tmp_path):
    images = [np.full((8, 8, 3), v, np.uint8) for v in (0, 120, 250)]
    fig = visualize.display_images(images, titles=["a", "b", "c"], cols=2,
                                   save_path=tmp_path / "grid.png")
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    assert _png(tmp_path / "grid.png").shape == (1400, 1400, 3)  # 2 rows x 2 cols
    with pytest.raises(ValueError, match="no images"):
        visualize.display_images([])


def test_display_top_masks_ranks_classes_by_area(scene, tmp_path):
    image, _, masks, class_ids = scene
    fig = visualize.display_top_masks(image, masks, class_ids, CLASS_NAMES, limit=3,
                                      save_path=tmp_path / "top.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["H x W=60x80", "lung", "heart", "-"]  # rectangle 560 px > disc
    lung_panel = fig.axes[1].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(lung_panel) > 0, masks[..., 0])
    assert _png(tmp_path / "top.png").size > 0


def test_plot_precision_recall_and_score_boxplot(tmp_path):
    fig = visualize.plot_precision_recall(0.75, np.array([1, 1, 0.5, 0]),
                                          np.array([0, 0.5, 1, 1]),
                                          save_path=tmp_path / "pr.png")
    assert fig.axes[0].get_title() == "Precision-Recall Curve. AP@50 = 0.750"
    assert _png(tmp_path / "pr.png").shape == (480, 640, 3)
    fig = visualize.plot_score_boxplot({"iou": [0.2, 0.9, 1.0], "dice": [0.3, 0.95, 1.0],
                                        "empty": []}, save_path=tmp_path / "box.png")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["iou", "dice"]
    assert _png(tmp_path / "box.png").shape == (480, 520, 3)  # 1.6 in per box + 2
    with pytest.raises(ValueError, match="no scores"):
        visualize.plot_score_boxplot({"iou": []})


def test_plot_overlaps_labels_match_and_wrong(tmp_path):
    overlaps = np.array([[0.9, 0.0], [0.1, 0.7]])
    fig = visualize.plot_overlaps(np.array([1, 2, 0]), np.array([1, 1]),
                                  np.array([0.99, 0.5]), overlaps, CLASS_NAMES,
                                  save_path=tmp_path / "overlaps.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.900\nmatch", "0.000\n", "0.100\n", "0.700\nwrong"]
    assert _png(tmp_path / "overlaps.png").shape == (1000, 1200, 3)
    with pytest.raises(ValueError, match="overlaps has shape"):
        visualize.plot_overlaps(np.array([1]), np.array([1]), np.array([0.9]), overlaps,
                                CLASS_NAMES)


def test_draw_boxes_masks_refined_boxes_and_captions(scene, tmp_path):
    image, boxes, masks, _ = scene
    refined = boxes + 2
    fig = visualize.draw_boxes(image, boxes, refined, masks, captions=["one", "two"],
                               visibilities=[2, 0], seed=1, save_path=tmp_path / "b.png")
    plain = visualize.draw_boxes(image, boxes, seed=1, save_path=tmp_path / "p.png")
    ax = fig.axes[0]
    # The visible instance: box, refined box, line and caption; the hidden one: box only.
    assert [t.get_text() for t in ax.texts] == ["one", "two"]
    assert len(ax.lines) == 1
    assert len(plain.axes[0].texts) == 0
    with_masks, without = _png(tmp_path / "b.png"), _png(tmp_path / "p.png")
    assert with_masks.shape == (1200, 1200, 3)
    row, col = _pixel(fig, 20, 20)
    assert np.abs(with_masks[row, col] - without[row, col]).sum() > 60
    with pytest.raises(ValueError, match="needs boxes or refined_boxes"):
        visualize.draw_boxes(image)
    with pytest.raises(ValueError, match="visibilities"):
        visualize.draw_boxes(image, boxes, visibilities=[3, 1])


def test_draw_rois_limits_and_pastes_positive_masks(scene, tmp_path, capsys):
    image, boxes, _, _ = scene
    rois = np.concatenate([boxes, [[0, 0, 10, 10]] * 3])
    class_ids = np.array([1, 2, 0, 0, 0])
    roi_masks = np.ones((5, 7, 7), np.float32)
    fig = visualize.draw_rois(image, rois, rois, roi_masks, class_ids, CLASS_NAMES,
                              limit=10, seed=0, save_path=tmp_path / "rois.png")
    assert fig.axes[0].get_title() == "5 ROIs"
    assert [t.get_text() for t in fig.axes[0].texts] == ["lung", "heart"]
    assert "Positive Ratio: 0.40" in capsys.readouterr().out
    painted = fig.axes[0].images[0].get_array()
    assert np.any(np.asarray(painted)[20, 20] != 40) and np.all(
        np.asarray(painted)[5, 75] == 40)
    fig = visualize.draw_rois(image, rois, rois, roi_masks, class_ids, CLASS_NAMES,
                              limit=2, seed=0)
    assert fig.axes[0].get_title() == "Showing 2 random ROIs out of 5"


def test_display_table_outside_a_notebook_prints_text(capsys):
    html = visualize.display_table([["NAME", "VALUE"], ["a", 1]])
    assert html.startswith("<table><tr><td>NAME")
    assert html.count("<tr>") == 2
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["a", "1"]


def test_on_a_displaying_backend_shows_once_saves_and_returns_none(scene, tmp_path,
                                                                   monkeypatch):
    """A notebook (inline backend): plt.show() as matterport, and no Figure returned,
    since IPython would display a returned Figure a second time."""
    image, boxes, masks, class_ids = scene
    shown = []
    monkeypatch.setattr(matplotlib, "get_backend",
                        lambda: "module://matplotlib_inline.backend_inline")
    monkeypatch.setattr(plt, "show", lambda: (shown.append(plt.gcf()), plt.close("all")))
    returned = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                           figsize=(2, 2), save_path=tmp_path / "nb.png")
    assert returned is None and len(shown) == 1
    assert _png(tmp_path / "nb.png").shape == (200, 200, 3)
