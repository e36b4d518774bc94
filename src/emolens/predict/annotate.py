"""Drawing predictions so that people can read them, on any picture: a group of ten, 4000 px or 300 px.

Each face gets its box and a label ("happy 0.84", after the face's number when it has one) placed where it covers
no other face and no other label: above the box, else below, else inside its top edge. The bars for every
emotion go in a panel beside the picture, one block per face, never on it (one stacked bar per face when seven
bars each would not fit). Sizes follow the picture's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import cv2
import numpy as np

from emolens.constants import emotion_color


class HeatMap(Protocol):
    """What drawing needs of a face's explanation (`emolens.predict.results.Explanation` is one): its heat map,
    (size, size) in [0, 1], and the square of the picture (left x, top y, side) its crop came from."""

    @property
    def heatmap(self) -> np.ndarray: ...

    @property
    def square(self) -> tuple[int, int, int]: ...


class DrawnFace(Protocol):
    """What drawing needs of a face (`emolens.predict.results.Face` is one): results.py draws through this
    module, so this module takes faces by their shape and imports nothing of results.py."""

    @property
    def box(self) -> tuple[int, int, int, int]: ...

    @property
    def emotion(self) -> str: ...

    @property
    def confidence(self) -> float: ...

    @property
    def probabilities(self) -> Mapping[str, float]: ...

    @property
    def explanation(self) -> HeatMap | None: ...


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PANEL_BACKGROUND = (32, 32, 32)
_PANEL_TEXT = (235, 235, 235)


def _rgb(hex_color: str) -> tuple[int, int, int]:
    value = hex_color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """Overlapping area of two (x0, y0, x1, y1) rectangles."""
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _scale(height: int, width: int) -> float:
    """Text and line size for a picture: 1 at 800 px on the long side."""
    return max(0.35, min(3.0, max(height, width) / 800))


def panel_width(height: int, width: int) -> int:
    """The side panel's width for a picture of this size (fixed per size, so a video keeps one frame size)."""
    return round(190 * _scale(height, width))


def _place_labels(
    faces: Sequence[DrawnFace], texts: list[str], scale: float, thickness: int, size: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """A rectangle (x0, y0, x1, y1) per label, each chosen to cover the fewest pixels of other faces and labels."""
    height, width = size
    boxes = [(x, y, x + w, y + h) for x, y, w, h in (face.box for face in faces)]
    placed: list[tuple[int, int, int, int]] = []
    for index, (box, text) in enumerate(zip(boxes, texts, strict=True)):
        (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
        label_w, label_h = text_w + 6, text_h + baseline + 6
        x0, y0, _, y1 = box
        left = min(max(x0, 0), max(width - label_w, 0))
        # above the box, below it, inside its top edge
        tops = [min(max(top, 0), max(height - label_h, 0)) for top in (y0 - label_h, y1, y0)]
        rects = [(left, top, left + label_w, top + label_h) for top in tops]
        others = [box for j, box in enumerate(boxes) if j != index] + placed
        costs = [sum(_overlap(rect, other) for other in others) for rect in rects]
        placed.append(rects[costs.index(min(costs))])  # the first of the cheapest
    return placed


# Smallest readable row in the panel, in pixels: below it, faces get one stacked bar each instead of seven bars.
_MIN_ROW = 10


def _labels(faces: Sequence[DrawnFace], numbers: Sequence[int | None] | None, gap: str) -> list[str]:
    """ "happy 0.84" per face, after its number where it has one ("2 happy 0.84")."""
    numbers = numbers if numbers is not None else [None] * len(faces)
    return [
        f"{'' if n is None else f'{n}{gap}'}{face.emotion} {face.confidence:.2f}"
        for n, face in zip(numbers, faces, strict=True)
    ]


def _panel(
    faces: Sequence[DrawnFace],
    class_names: Sequence[str],
    numbers: Sequence[int | None] | None,
    height: int,
    width: int,
) -> np.ndarray:
    """The side panel: per face, its number and label, then one bar per emotion; with too many faces for that, a
    colour key and one stacked bar per face (as many faces as fit, then "+N more")."""
    panel = np.empty((height, width, 3), dtype=np.uint8)
    panel[:] = _PANEL_BACKGROUND
    if not faces:
        cv2.putText(
            panel, "no faces", (8, max(20, height // 12)), _FONT, 0.45 * width / 190, _PANEL_TEXT, 1, cv2.LINE_AA
        )
        return panel
    colors = [_rgb(emotion_color(name, index)) for index, name in enumerate(class_names)]
    headings = _labels(faces, numbers, "  ")
    full_row = 18 * width / 190
    row = min(full_row, (height - 8) / (len(faces) * (len(class_names) + 1.5)))
    if row >= _MIN_ROW:
        _draw_bars_per_face(panel, headings, faces, class_names, colors, row)
    else:
        _draw_stacked_bars(panel, headings, faces, class_names, colors, full_row)
    return panel


def _panel_text(panel: np.ndarray, words: str, x: float, y: float, row: float, bigger: float = 1.0) -> None:
    """`words` in the panel in a row of height `row` whose top is at `y`, the font sized to the row."""
    cv2.putText(
        panel,
        words,
        (round(x), round(y + row * 0.8)),
        _FONT,
        max(0.25, row / 18 * 0.42) * bigger,
        _PANEL_TEXT,
        1,
        cv2.LINE_AA,
    )


def _draw_bars_per_face(
    panel: np.ndarray,
    headings: Sequence[str],
    faces: Sequence[DrawnFace],
    class_names: Sequence[str],
    colors: Sequence[tuple[int, int, int]],
    row: float,
) -> None:
    """Per face, its heading, then one row per emotion: its name and a bar as long as its probability."""
    width = panel.shape[1]
    label_w, bar_w = round(width * 0.40), round(width * 0.52)
    top = 4.0
    for heading, face in zip(headings, faces, strict=True):
        _panel_text(panel, heading, 6, top, row, 1.1)
        top += row * 1.2
        for name, color in zip(class_names, colors, strict=True):
            _panel_text(panel, name[:8], 6, top, row)
            length = max(1, round(bar_w * face.probabilities.get(name, 0.0)))
            cv2.rectangle(
                panel, (label_w, round(top + row * 0.2)), (label_w + length, round(top + row * 0.85)), color, cv2.FILLED
            )
            top += row
        top += row * 0.3


def _draw_stacked_bars(
    panel: np.ndarray,
    headings: Sequence[str],
    faces: Sequence[DrawnFace],
    class_names: Sequence[str],
    colors: Sequence[tuple[int, int, int]],
    full_row: float,
) -> None:
    """A colour key, then per face its heading over one bar split by emotion: as many faces as fit, then
    "+N more"."""
    height, width = panel.shape[:2]
    row = max(_MIN_ROW, min(full_row, (height - 8) / (len(class_names) + 1 + 2 * len(faces))))
    top = _draw_colour_key(panel, class_names, colors, 4.0, row) + row
    shown = min(len(faces), int((height - top) // (2 * row)))
    if shown < len(faces):  # keep a row for "+N more"
        shown = max(0, int((height - top - row) // (2 * row)))
    for heading, face in zip(headings[:shown], faces[:shown], strict=True):
        _panel_text(panel, heading, 6, top, row)
        left = 6.0
        for name, color in zip(class_names, colors, strict=True):
            share = (width - 12) * face.probabilities.get(name, 0.0)
            cv2.rectangle(
                panel,
                (round(left), round(top + row * 1.1)),
                (round(left + share), round(top + row * 1.8)),
                color,
                cv2.FILLED,
            )
            left += share
        top += 2 * row
    if shown < len(faces):
        _panel_text(panel, f"+{len(faces) - shown} more", 6, top, row)


def _draw_colour_key(
    panel: np.ndarray, class_names: Sequence[str], colors: Sequence[tuple[int, int, int]], top: float, row: float
) -> float:
    """One row per emotion from `top` down: a square of its colour and its name. Returns the top of the next row."""
    for name, color in zip(class_names, colors, strict=True):
        cv2.rectangle(
            panel, (6, round(top + row * 0.2)), (6 + round(row * 0.6), round(top + row * 0.8)), color, cv2.FILLED
        )
        _panel_text(panel, name, 10 + row * 0.6, top, row)
        top += row
    return top


def label_layout(
    image_shape: tuple[int, ...], faces: Sequence[DrawnFace], numbers: Sequence[int | None] | None = None
) -> tuple[list[str], list[tuple[int, int, int, int]], float, int]:
    """Each face's label text (after its number, if `numbers` gives one) and its rectangle (x0, y0, x1, y1) on a
    picture of this shape, with the text's scale and thickness. Labels scale with the picture and with its
    faces, so small faces get small labels."""
    height, width = image_shape[:2]
    face_side = np.median([min(face.box[2], face.box[3]) for face in faces]) if faces else height
    text_scale = max(0.35, min(0.6 * _scale(height, width), face_side / 160))
    thickness = max(1, round(text_scale * 2))
    texts = _labels(faces, numbers, " ")
    return texts, _place_labels(faces, texts, text_scale, thickness, (height, width)), text_scale, thickness


def heat_overlay(rgb: np.ndarray, heatmap: np.ndarray, *, strength: float = 0.55) -> np.ndarray:
    """`rgb` (H, W, 3) uint8 under `heatmap` (H, W) in [0, 1], coloured with the jet colour map in proportion to
    the heat: where the map is zero the picture shows through unchanged."""
    heat = np.clip(heatmap, 0.0, 1.0)
    colours = cv2.cvtColor(cv2.applyColorMap(np.uint8(np.round(heat * 255)), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    alpha = (strength * heat)[..., None]
    return np.uint8(np.round(rgb.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha))


def _paint_explanation(canvas: np.ndarray, explanation: HeatMap) -> None:
    """Blends a face's heat map into the picture over the square its crop came from (clipped to the picture)."""
    x0, y0, side = explanation.square
    height, width = canvas.shape[:2]
    left, top, right, bottom = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if right <= left or bottom <= top:
        return
    heat = cv2.resize(explanation.heatmap, (side, side), interpolation=cv2.INTER_LINEAR)[
        top - y0 : bottom - y0, left - x0 : right - x0
    ]
    canvas[top:bottom, left:right] = heat_overlay(canvas[top:bottom, left:right], heat)


def annotate(
    image_rgb: np.ndarray,
    faces: Sequence[DrawnFace],
    class_names: Sequence[str],
    numbers: Sequence[int | None] | None = None,
) -> np.ndarray:
    """An annotated copy of an RGB picture: each explained face's heat map, boxes and labels on it, the bars in
    a panel to its right. `numbers` (one per face, or None for none) go before the labels, on the picture and in
    the panel alike.

    Returns:
        RGB uint8 of shape (H, W + panel_width(H, W), 3).
    """
    canvas = np.ascontiguousarray(image_rgb).copy()
    height, width = canvas.shape[:2]
    for face in faces:
        if face.explanation is not None:
            _paint_explanation(canvas, face.explanation)
    colors = [
        _rgb(emotion_color(face.emotion, list(class_names).index(face.emotion) if face.emotion in class_names else 0))
        for face in faces
    ]
    for face, color in zip(faces, colors, strict=True):
        x, y, w, h = face.box
        cv2.rectangle(canvas, (x, y), (x + w, y + h), color, max(1, round(2 * _scale(height, width))), cv2.LINE_AA)
    texts, rectangles, text_scale, thickness = label_layout(canvas.shape, faces, numbers)
    for text, (x0, y0, x1, y1), color in zip(texts, rectangles, colors, strict=True):
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, cv2.FILLED)
        (_, text_h), _ = cv2.getTextSize(text, _FONT, text_scale, thickness)
        cv2.putText(canvas, text, (x0 + 3, y0 + 3 + text_h), _FONT, text_scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return np.concatenate([canvas, _panel(faces, class_names, numbers, height, panel_width(height, width))], axis=1)
