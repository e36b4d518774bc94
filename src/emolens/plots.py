"""Training curves, confusion matrices and image grids as PNG files.

Everything here takes plain data (lists, dicts, numpy arrays) and draws on its own `Figure` with the Agg
canvas, never pyplot's global state, so it is safe from any thread and never opens a window.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from emolens._io import atomic_path

logger = logging.getLogger(__name__)

_DPI = 120
_TRAIN_COLOR = "#1f77b4"
_VAL_COLOR = "#ff7f0e"
_BEST_COLOR = "#2ca02c"


def _literal(text: str) -> str:
    """`text` drawn as it is: a class or file name holding two `$` would otherwise be parsed as math-text (and
    `$x^$` crash the parser)."""
    return text.replace("$", r"\$")


def _new_figure(width: float, height: float, **kwargs) -> Figure:
    fig = Figure(figsize=(width, height), facecolor="white", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike, *, tight: bool = True) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, bbox_inches="tight" if tight else None, facecolor="white")
    logger.debug("wrote %s", path)
    return path


def _message_figure(message: str, path: str | os.PathLike, title: str | None = None) -> Path:
    fig = _new_figure(4, 1.5)
    if title:
        fig.suptitle(_literal(title), fontsize=11)
    fig.text(0.5, 0.45, _literal(message), ha="center", va="center", fontsize=12, color="#666666")
    return _save(fig, path, tight=False)


def _column(history: list[dict[str, float]], key: str) -> np.ndarray:
    values = [row.get(key) for row in history]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def plot_curves(history: list[dict[str, float]], path: str | os.PathLike) -> Path:
    """Draws accuracy and loss per epoch, train against validation, side by side.

    Args:
        history: One dict per epoch with `epoch` (1-based), `accuracy`, `loss` and optionally
            `val_accuracy`, `val_loss` and `learning_rate`. Missing values are left out of the plot.
        path: Where to write the PNG; parent folders are created.

    Returns:
        The path written.
    """
    if not history:
        return _message_figure("no training history", path, title="Training curves")
    epochs = np.array([row.get("epoch", i + 1) for i, row in enumerate(history)], dtype=float)
    val_acc = _column(history, "val_accuracy")
    best = int(np.nanargmax(val_acc)) if not np.all(np.isnan(val_acc)) else None
    lr = _column(history, "learning_rate")
    # Mark step drops (plateau schedules), not the tiny per-step decay that smooth schedules make every epoch.
    lr_drops = [epochs[i] for i in range(1, len(lr)) if lr[i] < 0.9 * lr[i - 1]]

    fig = _new_figure(11, 4.2, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric, label in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        for key, name, color in ((metric, "train", _TRAIN_COLOR), (f"val_{metric}", "validation", _VAL_COLOR)):
            values = _column(history, key)
            mask = ~np.isnan(values)
            if mask.any():
                ax.plot(epochs[mask], values[mask], marker="o", markersize=4, linewidth=1.8, color=color, label=name)
        for i, x in enumerate(lr_drops):
            ax.axvline(x, color="#999999", linestyle=":", linewidth=1, label="lr reduced" if i == 0 else None)
        if best is not None:
            best_label = f"best val acc {val_acc[best]:.3f} (epoch {epochs[best]:g})" if metric == "accuracy" else None
            ax.axvline(epochs[best], color=_BEST_COLOR, linestyle="--", linewidth=1.2, label=best_label)
        ax.set_title(label)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
            ax.set_xticks([epochs[0]])
        low, high = ax.get_ylim()
        min_span = 0.05 if metric == "accuracy" else max(0.05, 0.1 * abs(low + high) / 2)
        if high - low < min_span:  # a flat or single-epoch curve: avoid a microscopic, noisy y axis
            middle = (low + high) / 2
            ax.set_ylim(middle - min_span / 2, middle + min_span / 2)
        if ax.has_data():
            ax.legend(fontsize=8, loc="best")
    if best is not None:
        axes[0].plot([epochs[best]], [val_acc[best]], marker="*", markersize=13, color=_BEST_COLOR, zorder=5)
    return _save(fig, path)


def plot_confusion_matrix(
    matrix, class_names: list[str], path: str | os.PathLike, *, title: str = "Confusion matrix"
) -> Path:
    """Draws a confusion matrix coloured by recall: each row is normalised by its true-class count.

    Args:
        matrix: Square array of counts, rows = true class, columns = predicted class.
        class_names: One name per row/column, in matrix order.
        path: Where to write the PNG; parent folders are created.
        title: Title above the matrix.

    Returns:
        The path written.
    """
    counts = np.asarray(matrix, dtype=float)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix shape {counts.shape} does not match {n} class names")
    support = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, support, out=np.zeros_like(counts), where=support > 0)

    side = max(4.5, 0.85 * n + 2.5)
    fig = _new_figure(side + 1.0, side, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    colorbar.set_label("fraction of true class (recall)")
    fontsize = 9 if n <= 8 else max(5, 9 - (n - 8) // 2)
    for i in range(n):
        for j in range(n):
            count = counts[i, j]
            count_text = f"{int(count)}" if float(count).is_integer() else f"{count:.1f}"
            percent = f"{100 * fractions[i, j]:.1f}%" if support[i, 0] > 0 else "–"  # noqa: RUF001  (intended en dash: no images)
            color = "white" if fractions[i, j] > 0.55 else "#222222"
            ax.text(j, i, f"{count_text}\n{percent}", ha="center", va="center", fontsize=fontsize, color=color)
    labels = [_literal(name) for name in class_names]
    ax.set_xticks(range(n), labels=labels, rotation=35, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels=labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(_literal(title))
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _save(fig, path)


def plot_reliability(curves: dict[str, dict], path: str | os.PathLike, *, title: str = "Reliability") -> Path:
    """Draws a reliability diagram: accuracy against confidence per confidence bin, one line per curve.

    A calibrated model's points lie on the diagonal; points below it are over-confident bins.

    Args:
        curves: label -> a dict of `emolens.models.calibration.reliability` (bins' `confidence`, `accuracy`,
            `count` and the overall `ece`), e.g. {"raw": ..., "calibrated": ...}.
        path: Where to write the PNG.
        title: Title above the diagram.

    Returns:
        The path written.
    """
    fig = _new_figure(5.2, 4.6, layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", linewidth=1, label="perfectly calibrated")
    # strict=False: a colour each from a three-colour palette; callers plot two curves (raw and calibrated).
    for (label, curve), color in zip(curves.items(), (_VAL_COLOR, _TRAIN_COLOR, _BEST_COLOR), strict=False):
        points = [
            (c, a, n) for c, a, n in zip(curve["confidence"], curve["accuracy"], curve["count"], strict=True) if n
        ]
        if not points:
            continue
        confidence, accuracy, count = (np.array(column, dtype=float) for column in zip(*points, strict=True))
        # Marker area follows the bin's share of images, so a nearly empty bin does not look as weighty as a full one.
        sizes = 15 + 250 * count / count.sum()
        ax.plot(confidence, accuracy, color=color, linewidth=1.5, label=f"{_literal(label)} (ECE {curve['ece']:.3f})")
        ax.scatter(confidence, accuracy, s=sizes, color=color, alpha=0.7, edgecolors="white", linewidths=0.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Confidence (top probability)")
    ax.set_ylabel("Accuracy")
    ax.set_title(_literal(title))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    return _save(fig, path)


def plot_image_grid(
    images: np.ndarray, titles: list[str], path: str | os.PathLike, *, columns: int = 8, title: str | None = None
) -> Path:
    """Shows images in a grid, each with a short caption above it.

    Args:
        images: Array of shape (N, H, W) (or (N, H, W, 1)), uint8 grayscale, or (N, H, W, 3) uint8 RGB.
        titles: One caption per image, may contain newlines (e.g. "true: sad\\npred: fear 0.61");
            missing captions are left blank.
        path: Where to write the PNG; parent folders are created.
        columns: Most images per row.
        title: Optional title above the whole grid.

    Returns:
        The path written.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if len(images) == 0:
        return _message_figure("no images", path, title=title)
    rgb = images.ndim == 4 and images.shape[-1] == 3
    if images.ndim != 3 and not rgb:
        raise ValueError(f"expected images of shape (N, H, W) or (N, H, W, 3), got {images.shape}")
    count = len(images)
    cols = max(1, min(columns, count))
    rows = math.ceil(count / cols)
    captions = [_literal(str(t)) for t in titles[:count]] + [""] * max(0, count - len(titles))
    lines = max(c.count("\n") + 1 if c else 0 for c in captions)
    cell = 1.45
    fig = _new_figure(cols * cell, rows * (cell + 0.16 * lines) + (0.4 if title else 0.0))
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= count:
            continue
        ax.imshow(images[index], cmap=None if rgb else "gray", vmin=0, vmax=255, interpolation="nearest")
        if captions[index]:
            ax.set_title(captions[index], fontsize=7.5, linespacing=1.15, pad=3)
    if title:
        fig.suptitle(_literal(title), fontsize=12)
    fig.subplots_adjust(wspace=0.15, hspace=0.05 + 0.1 * lines)
    return _save(fig, path)


def plot_emotion_timeline(
    tracks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    class_names: list[str],
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> Path:
    """One lane per tracked face through a video, coloured by its top emotion at each analysed frame, the more
    opaque the more confident: which face showed what, and when, at a glance.

    Args:
        tracks: face number -> (times (T,) in seconds, top-emotion class indices (T,), confidences (T,)), in
            the order the lanes go from the top. Each frame's colour lasts until the face's next frame, unless
            the face was not seen for more than a second (then it lasts one frame interval).
        class_names: the model's classes (the legend).
        path: Where to write the PNG.
        title: Optional title.

    Returns:
        The path written.
    """
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    from emolens.constants import emotion_color

    if not tracks:
        return _message_figure("no faces found", path, title=title)
    fig = _new_figure(9, max(2.2, 0.42 * len(tracks) + 1.3))
    ax = fig.subplots()
    colours = [emotion_color(name, index) for index, name in enumerate(class_names)]
    gaps = np.concatenate([np.diff(np.asarray(times, dtype=float)) for times, _, _ in tracks.values()])
    step = float(np.median(gaps[gaps > 0])) if (gaps > 0).any() else 0.1  # the analysed frames' interval
    shown: set[int] = set()
    for lane, (times, classes, confidences) in enumerate(tracks.values()):
        times = np.asarray(times, dtype=float)
        ends = np.append(times[1:], times[-1] + step)
        ends = np.where(ends - times > 1.0, times + step, ends)
        faces = [
            to_rgba(colours[int(c)], alpha=0.2 + 0.8 * float(p)) for c, p in zip(classes, confidences, strict=True)
        ]
        ax.broken_barh(list(zip(times, ends - times, strict=True)), (lane - 0.4, 0.8), facecolors=faces, linewidth=0)
        shown.update(int(c) for c in classes)
    ax.set_yticks(range(len(tracks)), [f"face {number}" for number in tracks])
    ax.set_ylim(len(tracks) - 0.5, -0.5)  # the first face seen on top
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", alpha=0.3)
    key = [Patch(color=colours[i], label=_literal(class_names[i])) for i in sorted(shown)]
    ax.legend(handles=key, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="emotion (faint: unsure)")
    if title:
        ax.set_title(_literal(title))
    return _save(fig, path)


def plot_class_counts(counts: dict[str, dict[str, int]], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Images per class, one bar per split side by side, with each bar's count written on it.

    Args:
        counts: split -> class -> images (as `Dataset.counts()`).
        path: Where to write the PNG; parent folders are created.
        title: Optional title.

    Returns:
        The path written.
    """
    splits = [s for s in ("train", "val", "test") if s in counts] + [
        s for s in counts if s not in ("train", "val", "test")
    ]
    if not splits:
        return _message_figure("no images", path, title=title)
    classes = list(counts[splits[0]])
    fig = _new_figure(max(6.0, 1.1 * len(classes)), 3.8)
    ax = fig.subplots()
    width = 0.8 / len(splits)
    positions = np.arange(len(classes))
    palette = {"train": _TRAIN_COLOR, "val": _VAL_COLOR, "test": _BEST_COLOR}
    for offset, split in enumerate(splits):
        values = [counts[split].get(c, 0) for c in classes]
        bars = ax.bar(
            positions + (offset - (len(splits) - 1) / 2) * width, values, width, label=split, color=palette.get(split)
        )
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(positions, [_literal(name) for name in classes])
    ax.set_ylabel("images")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False)
    if title:
        ax.set_title(_literal(title))
    return _save(fig, path)


def plot_image_rows(
    rows: list[tuple[str, np.ndarray, list[str]]], path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """One row of grayscale images per entry, labelled on the left, each image captioned: for duplicate groups.

    Args:
        rows: (row label, images (N, H, W) uint8, one caption per image).
        path: Where to write the PNG; parent folders are created.
        title: Optional title.

    Returns:
        The path written.
    """
    if not rows:
        return _message_figure("nothing to show", path, title=title)
    columns = max(len(images) for _, images, _ in rows)
    cell, caption, heading = 1.2, 0.35, 0.5 if title else 0.1
    height = len(rows) * (cell + caption) + heading
    fig = _new_figure(1.6 + columns * cell, height)
    fig.subplots_adjust(
        left=0.01, right=0.99, bottom=0.05 / height, top=1 - heading / height, wspace=0.05, hspace=caption / cell
    )
    axes = fig.subplots(
        len(rows), columns + 1, squeeze=False, gridspec_kw={"width_ratios": [1.6 / cell] + [1] * columns}
    )
    for (label, images, captions), row_axes in zip(rows, axes, strict=True):
        row_axes[0].set_axis_off()
        row_axes[0].text(
            1.0, 0.5, _literal(label), ha="right", va="center", fontsize=7.5, transform=row_axes[0].transAxes
        )
        for index, ax in enumerate(row_axes[1:]):
            ax.set_axis_off()
            if index < len(images):
                ax.imshow(images[index], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                ax.set_title(_literal(captions[index]) if index < len(captions) else "", fontsize=6.5, pad=2)
    if title:
        fig.suptitle(_literal(title), fontsize=11, y=1 - 0.15 / height)
    return _save(fig, path)
