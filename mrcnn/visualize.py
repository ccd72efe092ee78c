"""Matterport's ``mrcnn.visualize``: pictures of images, masks, boxes and metrics.

The functions keep matterport's names and positional arguments and add keyword-only
options: ``save_path`` writes a PNG, ``seed`` makes the random colours reproducible.

Figures, headless or not: a function that draws on an ``ax`` you pass leaves that
figure to you. One that makes its own figure saves it to ``save_path`` when given,
then calls ``plt.show()`` on a backend that can display (a GUI or a notebook, as
matterport did) or closes it on a non-interactive one such as Agg, so that a loop
over thousands of images on a server neither blocks nor leaks figures. The drawing
functions return the Figure on a non-interactive backend (scripts, servers, tests)
and None on a displaying one, as matterport's did: a notebook shows a returned
Figure a second time.

Shapes, as everywhere in the library: image [H, W, 3] in 0..255; boxes
[N, (y1, x1, y2, x2)] in pixels, y2/x2 exclusive; masks [H, W, N]; colours are RGB
(or RGBA) tuples of floats in [0, 1].
"""
from __future__ import annotations

import colorsys
import itertools
import math
import random
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import lines, patches
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from skimage.measure import find_contours

from mrcnn.masks import _foreground, unmold_mask
from mrcnn.metrics import compute_matches

Color = Sequence[float]

# Backends that cannot display: plt.show() would only warn, so figures are closed.
_NON_INTERACTIVE = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def _new_figure(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(1, figsize=figsize)
    return fig, ax


def _finish(fig: Figure, save_path: str | Path | None, owned: bool) -> Figure | None:
    """Save `fig` if asked; show or close it when this module created it.

    Returns the Figure on a non-interactive backend, None on one that displays it.
    """
    if save_path is not None:
        Path(save_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save_path)
    if matplotlib.get_backend().lower() in _NON_INTERACTIVE:
        if owned:
            plt.close(fig)
        return fig
    if owned:
        plt.show()
    # A notebook shows a returned Figure a second time: return None, as matterport.
    return None


def _check_count(name: str, count: int, reference: str, expected: int) -> None:
    if count != expected:
        raise ValueError(f"{name} describes {count} instances but {reference} has "
                         f"{expected}; boxes [N, 4], masks [H, W, N] and class_ids [N] "
                         f"must agree")


def random_colors(N: int, bright: bool = True, seed: int | None = None) -> list[tuple]:
    """N visually distinct RGB colours: evenly spaced hues, in random order.

    Args:
        N: number of colours.
        bright: full value (1.0) or a darker 0.7.
        seed: order the colours with this seed; None uses the global `random`
            state, as matterport did.

    Returns:
        A list of N (r, g, b) tuples of floats in [0, 1].
    """
    value = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / N, 1.0, value) for i in range(N)]
    (random if seed is None else random.Random(seed)).shuffle(colors)
    return colors


def apply_mask(image: np.ndarray, mask: np.ndarray, color: Color,
               alpha: float = 0.5) -> np.ndarray:
    """Blend `color` into `image` where `mask` is set, in place.

    Args:
        image: [H, W, 3] in 0..255, modified in place (integer images are truncated,
            as matterport's were).
        mask: [H, W] bool, or values > 0.5 as foreground.
        color: (r, g, b[, a]) in [0, 1]; alpha of the colour is ignored.
        alpha: opacity of the colour.

    Returns:
        `image`.
    """
    mask = _foreground(np.asarray(mask))
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask has shape {mask.shape} but image is {image.shape}; "
                         f"expected [H, W] matching the image")
    tint = np.asarray(color[:3], dtype=np.float64) * 255
    image[mask] = image[mask] * (1 - alpha) + alpha * tint
    return image


def _outline(ax: Axes, mask: np.ndarray, color: Color) -> None:
    # A one-pixel border of zeros closes the contours of masks that touch the edge.
    padded = np.pad(_foreground(mask).astype(np.uint8), 1)
    for verts in find_contours(padded, 0.5):
        ax.add_patch(patches.Polygon(np.fliplr(verts) - 1, facecolor="none",
                                     edgecolor=color))


def display_instances(image: np.ndarray, boxes: np.ndarray, masks: np.ndarray,
                      class_ids: np.ndarray, class_names: Sequence[str],
                      scores: np.ndarray | None = None, title: str = "",
                      figsize: tuple[float, float] = (16, 16), ax: Axes | None = None,
                      show_mask: bool = True, show_bbox: bool = True,
                      colors: Sequence[Color] | None = None,
                      captions: Sequence[str] | None = None, *,
                      save_path: str | Path | None = None,
                      seed: int | None = None) -> Figure | None:
    """Draw instances (dashed box, tinted mask, outline, caption) over an image.

    Args:
        image: [H, W, 3] in 0..255.
        boxes: [N, (y1, x1, y2, x2)]; an all-zero row (padding) is skipped.
        masks: [H, W, N].
        class_ids: [N] indices into class_names.
        class_names: names of the dataset's classes, "BG" first.
        scores: [N] confidences, shown after the class name.
        title, figsize, ax: the figure; figsize is in inches at the figure's dpi.
        show_mask, show_bbox: draw the tinted masks / the boxes.
        colors: one colour per instance (default: random_colors(N, seed=seed)).
        captions: one string per instance, replacing "name score".
        save_path: write the figure as PNG (or any format matplotlib knows).
        seed: seed of the default colours.

    Returns:
        The Figure (None on a displaying backend).
    """
    boxes = np.asarray(boxes)
    masks = np.asarray(masks)
    class_ids = np.asarray(class_ids)
    n = boxes.shape[0]
    if masks.ndim != 3:
        raise ValueError(f"masks must be [H, W, N]; got shape {masks.shape}")
    _check_count("masks", masks.shape[-1], "boxes", n)
    _check_count("class_ids", class_ids.shape[0], "boxes", n)
    owned = ax is None
    fig, ax = _new_figure(figsize) if owned else (ax.figure, ax)
    if colors is None:
        colors = random_colors(n, seed=seed)

    height, width = image.shape[:2]
    # A 10-pixel margin shows boxes that reach the image border.
    ax.set_ylim(height + 10, -10)
    ax.set_xlim(-10, width + 10)
    ax.axis("off")
    ax.set_title(title)

    canvas = image.astype(np.float64)
    for i in range(n):
        if not np.any(boxes[i]):
            continue
        color = colors[i]
        y1, x1, y2, x2 = boxes[i][:4]
        if show_bbox:
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2,
                                           alpha=0.7, linestyle="dashed",
                                           edgecolor=color, facecolor="none"))
        if captions:
            caption = captions[i]
        else:
            label = class_names[class_ids[i]]
            caption = label if scores is None else f"{label} {scores[i]:.3f}"
        ax.text(x1, y1 + 8, caption, color="w", size=11, backgroundcolor="none")
        if show_mask:
            apply_mask(canvas, masks[:, :, i], color)
        _outline(ax, masks[:, :, i], color)
    ax.imshow(np.clip(canvas, 0, 255).astype(np.uint8))
    return _finish(fig, save_path, owned)


def display_differences(image: np.ndarray, gt_box: np.ndarray, gt_class_id: np.ndarray,
                        gt_mask: np.ndarray, pred_box: np.ndarray,
                        pred_class_id: np.ndarray, pred_score: np.ndarray,
                        pred_mask: np.ndarray, class_names: Sequence[str],
                        title: str = "", ax: Axes | None = None, show_mask: bool = True,
                        show_box: bool = True, iou_threshold: float = 0.5,
                        score_threshold: float = 0.5, *,
                        save_path: str | Path | None = None) -> Figure | None:
    """Ground truth (green) and predictions (red) on one image; captions "score / IoU".

    The IoU of a prediction is that of its match (utils.compute_matches with the
    given thresholds), or its best overlap when it has none.

    Args:
        gt_box, gt_class_id, gt_mask: [N, 4], [N], [H, W, N].
        pred_box, pred_class_id, pred_score, pred_mask: [M, 4], [M], [M], [H, W, M].
        Others: as display_instances.

    Returns:
        The Figure (None on a displaying backend).
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
        iou_threshold=iou_threshold, score_threshold=score_threshold)
    # compute_matches reports predictions by descending score: draw them in that order.
    pred_count = len(pred_match)
    order = np.argsort(np.asarray(pred_score)[:pred_count])[::-1]
    gt_count = len(gt_match)
    pred_box = np.asarray(pred_box)[order]
    pred_score = np.asarray(pred_score)[order]
    # A matched prediction shows the IoU of its match, any other its best overlap.
    ious = [overlaps[i, int(pred_match[i])] if pred_match[i] > -1
            else overlaps[i].max(initial=0) for i in range(pred_count)]
    captions = [""] * gt_count + [f"{pred_score[i]:.2f} / {ious[i]:.2f}"
                                  for i in range(pred_count)]
    colors = [(0, 1, 0, 0.8)] * gt_count + [(1, 0, 0, 1)] * pred_count
    return display_instances(
        image,
        np.concatenate([np.asarray(gt_box)[:gt_count], pred_box]),
        np.concatenate([np.asarray(gt_mask)[..., :gt_count],
                        np.asarray(pred_mask)[..., order]], axis=-1),
        np.concatenate([np.asarray(gt_class_id)[:gt_count],
                        np.asarray(pred_class_id)[order]]),
        class_names, ax=ax, show_bbox=show_box, show_mask=show_mask, colors=colors,
        captions=captions,
        title=title or "Ground Truth and Detections\n GT=green, pred=red, captions: score/IoU",
        save_path=save_path)


def draw_rois(image: np.ndarray, rois: np.ndarray, refined_rois: np.ndarray,
              mask: np.ndarray, class_ids: np.ndarray, class_names: Sequence[str],
              limit: int = 10, *, save_path: str | Path | None = None,
              seed: int | None = None) -> Figure | None:
    """ROIs (dashed; grey when negative) and, for positives, their refined boxes and masks.

    Args:
        image: [H, W, 3].
        rois: [N, (y1, x1, y2, x2)] in image pixels.
        refined_rois: [N, (y1, x1, y2, x2)], rois after the predicted box deltas.
        mask: [N, mask_height, mask_width] per-ROI mask probabilities.
        class_ids: [N]; 0 marks a negative ROI.
        limit: draw at most this many, chosen at random.
        seed: seed of the choice and the colours.

    Returns:
        The Figure (None on a displaying backend).
    """
    rng = np.random.default_rng(seed)
    class_ids = np.asarray(class_ids)
    ids = np.arange(rois.shape[0])
    if ids.size > limit:
        ids = rng.choice(ids, limit, replace=False)
    fig, ax = _new_figure((12, 12))
    shown = (f"Showing {len(ids)} random ROIs out of {rois.shape[0]}"
             if rois.shape[0] > limit else f"{len(ids)} ROIs")
    ax.set_title(shown)
    ax.set_ylim(image.shape[0] + 20, -20)
    ax.set_xlim(-50, image.shape[1] + 20)
    ax.axis("off")
    canvas = image.astype(np.float64)
    for i in ids:
        color = rng.random(3)
        class_id = class_ids[i]
        y1, x1, y2, x2 = rois[i][:4]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2,
                                       edgecolor=color if class_id else "gray",
                                       facecolor="none", linestyle="dashed"))
        if not class_id:
            continue
        ry1, rx1, ry2, rx2 = refined_rois[i][:4]
        ax.add_patch(patches.Rectangle((rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                                       edgecolor=color, facecolor="none"))
        # A line between the top-left corners shows where refinement moved the box.
        ax.add_line(lines.Line2D([x1, rx1], [y1, ry1], color=color))
        ax.text(rx1, ry1 + 8, class_names[class_id], color="w", size=11,
                backgroundcolor="none")
        full = unmold_mask(mask[i], np.asarray(rois[i][:4]).astype(np.int32), image.shape)
        apply_mask(canvas, full, color)
    ax.imshow(np.clip(canvas, 0, 255).astype(np.uint8))
    positives = int(np.count_nonzero(class_ids > 0))
    print("Positive ROIs: ", positives)
    print("Negative ROIs: ", int(np.count_nonzero(class_ids == 0)))
    print(f"Positive Ratio: {positives / max(class_ids.shape[0], 1):.2f}")
    return _finish(fig, save_path, owned=True)


def draw_box(image: np.ndarray, box: Sequence[int], color: Sequence[int],
             thickness: int = 2) -> np.ndarray:
    """Draw a box outline into an image array, in place.

    Args:
        image: [H, W, C] array.
        box: (y1, x1, y2, x2) in pixels, y2/x2 exclusive; clipped to the image.
        color: C values in the image's range (e.g. (255, 0, 0) for uint8 RGB).
        thickness: width of the frame in pixels, drawn inside the box.

    Returns:
        `image`.
    """
    height, width = image.shape[:2]
    y1, x1, y2, x2 = (int(v) for v in box[:4])
    y1, y2 = max(y1, 0), min(y2, height)
    x1, x2 = max(x1, 0), min(x2, width)
    if y2 <= y1 or x2 <= x1:
        return image
    t = max(int(thickness), 1)
    image[y1:min(y1 + t, y2), x1:x2] = color
    image[max(y2 - t, y1):y2, x1:x2] = color
    image[y1:y2, x1:min(x1 + t, x2)] = color
    image[y1:y2, max(x2 - t, x1):x2] = color
    return image


def display_images(images: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                   cols: int = 4, cmap=None, norm=None, interpolation=None, *,
                   figsize: tuple[float, float] | None = None,
                   save_path: str | Path | None = None) -> Figure | None:
    """Show images in a grid, with optional titles.

    Args:
        images: [H, W, 3] colour images (shown as uint8, as matterport did) or [H, W]
            arrays (shown through `cmap`, values unchanged).
        titles: one per image.
        cols: images per row.
        cmap, norm, interpolation: passed to imshow.
        figsize: default 14 inches wide, rows in proportion.

    Returns:
        The Figure (None on a displaying backend).
    """
    if not len(images):
        raise ValueError("display_images got no images")
    titles = titles if titles is not None else [""] * len(images)
    rows = math.ceil(len(images) / cols)
    fig = plt.figure(figsize=figsize or (14, max(14 * rows / cols, 2)))
    for i, (image, title) in enumerate(zip(images, titles), start=1):
        ax = fig.add_subplot(rows, cols, i)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        image = np.asarray(image)
        if image.ndim == 3:
            image = image.astype(np.uint8)
        ax.imshow(image, cmap=cmap, norm=norm, interpolation=interpolation)
    return _finish(fig, save_path, owned=True)


def display_top_masks(image: np.ndarray, mask: np.ndarray, class_ids: np.ndarray,
                      class_names: Sequence[str], limit: int = 4, *,
                      save_path: str | Path | None = None) -> Figure | None:
    """The image and, for the `limit` classes with the largest mask area, their instances.

    Args:
        image: [H, W, 3].
        mask: [H, W, N] instance masks.
        class_ids: [N].
        limit: number of class panels; unused panels show "-".

    Returns:
        As display_images (with limit + 1 columns).
    """
    mask = np.asarray(mask)
    class_ids = np.asarray(class_ids)
    _check_count("class_ids", class_ids.shape[0], "mask", mask.shape[-1])
    unique = np.unique(class_ids)
    areas = [np.count_nonzero(mask[..., class_ids == c]) for c in unique]
    ranked = [c for c, area in sorted(zip(unique, areas), key=lambda r: r[1], reverse=True)
              if area > 0]
    panels = [image]
    titles = [f"H x W={image.shape[0]}x{image.shape[1]}"]
    for i in range(limit):
        if i < len(ranked):
            members = mask[..., class_ids == ranked[i]].astype(np.int64)
            # Instance k of the class shows as value k, so touching instances differ.
            panels.append((members * np.arange(1, members.shape[-1] + 1)).sum(-1))
            titles.append(class_names[ranked[i]])
        else:
            panels.append(np.zeros(mask.shape[:2], np.int64))
            titles.append("-")
    return display_images(panels, titles=titles, cols=limit + 1, cmap="Blues_r",
                          save_path=save_path)


def plot_precision_recall(AP: float, precisions: np.ndarray, recalls: np.ndarray, *,
                          ax: Axes | None = None,
                          save_path: str | Path | None = None) -> Figure | None:
    """The precision-recall curve, titled with the AP.

    Args:
        AP: average precision at IoU >= 0.5.
        precisions, recalls: [K] as returned by utils.compute_ap.

    Returns:
        The Figure (None on a displaying backend).
    """
    owned = ax is None
    fig, ax = _new_figure((6.4, 4.8)) if owned else (ax.figure, ax)
    ax.set_title(f"Precision-Recall Curve. AP@50 = {AP:.3f}")
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.plot(recalls, precisions)
    return _finish(fig, save_path, owned)


def plot_overlaps(gt_class_ids: np.ndarray, pred_class_ids: np.ndarray,
                  pred_scores: np.ndarray, overlaps: np.ndarray,
                  class_names: Sequence[str], threshold: float = 0.5, *,
                  save_path: str | Path | None = None) -> Figure | None:
    """Grid of prediction/ground-truth IoUs, marking "match" or "wrong" class above threshold.

    Args:
        gt_class_ids: [N]; zero (padding) entries are dropped.
        pred_class_ids: [M]; zero entries are dropped.
        pred_scores: [M].
        overlaps: [M', N'] IoUs of the kept predictions and ground truths.
        threshold: IoU above which a cell is labelled.

    Returns:
        The Figure (None on a displaying backend).
    """
    gt_class_ids = np.asarray(gt_class_ids)
    pred_class_ids = np.asarray(pred_class_ids)
    gt_class_ids = gt_class_ids[gt_class_ids != 0]
    pred_class_ids = pred_class_ids[pred_class_ids != 0]
    overlaps = np.asarray(overlaps)
    if overlaps.shape != (len(pred_class_ids), len(gt_class_ids)):
        raise ValueError(f"overlaps has shape {overlaps.shape}; expected [predictions, "
                         f"ground truths] = {(len(pred_class_ids), len(gt_class_ids))}")
    fig, ax = _new_figure((12, 10))
    ax.imshow(overlaps, interpolation="nearest", cmap=plt.cm.Blues)
    ax.set_yticks(np.arange(len(pred_class_ids)),
                  [f"{class_names[int(c)]} ({pred_scores[i]:.2f})"
                   for i, c in enumerate(pred_class_ids)])
    ax.set_xticks(np.arange(len(gt_class_ids)),
                  [class_names[int(c)] for c in gt_class_ids], rotation=90)
    half = overlaps.max(initial=0) / 2.0
    for i, j in itertools.product(range(overlaps.shape[0]), range(overlaps.shape[1])):
        verdict = ""
        if overlaps[i, j] > threshold:
            verdict = "match" if gt_class_ids[j] == pred_class_ids[i] else "wrong"
        color = ("white" if overlaps[i, j] > half
                 else "black" if overlaps[i, j] > 0 else "grey")
        ax.text(j, i, f"{overlaps[i, j]:.3f}\n{verdict}", horizontalalignment="center",
                verticalalignment="center", fontsize=9, color=color)
    ax.set_xlabel("Ground Truth")
    ax.set_ylabel("Predictions")
    fig.tight_layout()
    return _finish(fig, save_path, owned=True)


def draw_boxes(image: np.ndarray, boxes: np.ndarray | None = None,
               refined_boxes: np.ndarray | None = None, masks: np.ndarray | None = None,
               captions: Sequence[str] | None = None,
               visibilities: Sequence[int] | None = None, title: str = "",
               ax: Axes | None = None, *, save_path: str | Path | None = None,
               seed: int | None = None) -> Figure | None:
    """Boxes (dotted), refined boxes (solid, joined to their box), captions and masks.

    Args:
        image: [H, W, 3].
        boxes: [N, (y1, x1, y2, x2)]; an all-zero row is skipped.
        refined_boxes: [N, (y1, x1, y2, x2)].
        masks: [H, W, N].
        captions: N strings, drawn on the refined box when there is one.
        visibilities: N values: 0 grey and faint, 1 dotted (default), 2 solid.
        seed: seed of the colours.

    Returns:
        The Figure (None on a displaying backend).
    """
    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes needs boxes or refined_boxes")
    n = (boxes if boxes is not None else refined_boxes).shape[0]
    styles = {0: ("dotted", 0.5), 1: ("dotted", 1.0), 2: ("solid", 1.0)}
    if visibilities is not None and any(v not in styles for v in visibilities):
        raise ValueError(f"visibilities are {list(visibilities)}; expected 0, 1 or 2 each")
    owned = ax is None
    fig, ax = _new_figure((12, 12)) if owned else (ax.figure, ax)
    colors = random_colors(n, seed=seed)
    margin = image.shape[0] // 10
    ax.set_ylim(image.shape[0] + margin, -margin)
    ax.set_xlim(-margin, image.shape[1] + margin)
    ax.axis("off")
    ax.set_title(title)
    canvas = image.astype(np.float64)
    for i in range(n):
        visibility = visibilities[i] if visibilities is not None else 1
        style, alpha = styles[visibility]
        color = "gray" if visibility == 0 else colors[i]
        corner = None
        if boxes is not None:
            if not np.any(boxes[i]):
                continue
            y1, x1, y2, x2 = boxes[i][:4]
            corner = (x1, y1)
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2,
                                           alpha=alpha, linestyle=style,
                                           edgecolor=color, facecolor="none"))
        if refined_boxes is not None and visibility > 0:
            ry1, rx1, ry2, rx2 = np.asarray(refined_boxes[i][:4]).astype(np.int32)
            ax.add_patch(patches.Rectangle((rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                                           edgecolor=color, facecolor="none"))
            if corner is not None:
                ax.add_line(lines.Line2D([corner[0], rx1], [corner[1], ry1], color=color))
            corner = (rx1, ry1)
        if captions is not None and corner is not None:
            ax.text(corner[0], corner[1], captions[i], size=11, verticalalignment="top",
                    color="w", backgroundcolor="none",
                    bbox={"facecolor": color, "alpha": 0.5, "pad": 2, "edgecolor": "none"})
        if masks is not None:
            apply_mask(canvas, masks[:, :, i], color if visibility else (0.5, 0.5, 0.5))
            _outline(ax, masks[:, :, i], color)
    ax.imshow(np.clip(canvas, 0, 255).astype(np.uint8))
    return _finish(fig, save_path, owned)


def plot_score_boxplot(scores: Mapping[str, Sequence[float]], title: str = "", *,
                       ax: Axes | None = None,
                       save_path: str | Path | None = None) -> Figure | None:
    """Box plot of per-image scores, one box per series, each point drawn over its box.

    Args:
        scores: {"iou": [per-image IoU], "dice": [...], ...}; empty series are skipped.
        title: the axes title.

    Returns:
        The Figure (None on a displaying backend).
    """
    series = {name: np.asarray(values, dtype=np.float64)
              for name, values in scores.items() if len(values)}
    if not series:
        raise ValueError("plot_score_boxplot got no scores to plot")
    owned = ax is None
    fig, ax = _new_figure((1.6 * len(series) + 2, 4.8)) if owned else (ax.figure, ax)
    ax.boxplot(list(series.values()))
    ax.set_xticks(np.arange(1, len(series) + 1), list(series))
    # Points beside the boxes show how few images a small evaluation rests on.
    jitter = np.random.default_rng(0)
    for k, values in enumerate(series.values(), start=1):
        ax.plot(k + jitter.uniform(-0.08, 0.08, values.size), values, ".", alpha=0.5)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("score per image")
    ax.set_title(title)
    return _finish(fig, save_path, owned)


def display_table(table: Sequence[Sequence]) -> str:
    """Show rows of values as an HTML table in a notebook, or as text elsewhere.

    Returns:
        The HTML of the table.
    """
    html = "<table>" + "".join(
        "<tr>" + "".join(f"<td>{str(col):40}</td>" for col in row) + "</tr>"
        for row in table) + "</table>"
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
        shell = get_ipython()
    except ImportError:  # IPython is optional: plain text outside notebooks
        shell = None
    if shell is not None:
        display(HTML(html))
    else:
        for row in table:
            print("  ".join(f"{str(col):40}" for col in row))
    return html


def display_weight_stats(model) -> list[list[str]]:
    """Table of min/max/std of every trainable weight, flagging constant or huge ones.

    Args:
        model: a MaskRCNN (anything with get_trainable_layers()).

    Returns:
        The rows shown, header first.
    """
    table = [["WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD"]]
    for layer in model.get_trainable_layers():
        for i, (variable, value) in enumerate(zip(layer.weights, layer.get_weights())):
            name = getattr(variable, "path", variable.name)
            alert = ""
            # A conv bias (second weight) may legitimately be all zeros.
            if value.min() == value.max() and not (type(layer).__name__ == "Conv2D"
                                                   and i == 1):
                alert += "<span style='color:red'>*** dead?</span>"
            if np.abs(value).max() > 1000:
                alert += "<span style='color:red'>*** Overflow?</span>"
            table.append([name + alert, str(value.shape), f"{value.min():+9.4f}",
                          f"{value.max():+10.4f}", f"{value.std():+9.4f}"])
    display_table(table)
    return table
