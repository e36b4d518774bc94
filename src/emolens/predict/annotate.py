"""Drawing predictions onto a picture: a box per face, its label and confidence, and a bar per emotion."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from emolens.constants import emotion_color
from emolens.predict.recognizer import Face

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _bgr(hex_color: str) -> tuple[int, int, int]:
    value = hex_color.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return blue, green, red


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, color: tuple[int, int, int], background: tuple[int, int, int]) -> None:
    """Text on a filled box, clamped inside the picture."""
    thickness = max(1, round(scale * 2))
    (width, height), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    x = min(max(origin[0], 0), max(image.shape[1] - width - 4, 0))
    y = min(max(origin[1], height + 4), image.shape[0] - baseline)
    cv2.rectangle(image, (x, y - height - 4), (x + width + 4, y + baseline), background, cv2.FILLED)
    cv2.putText(image, text, (x + 2, y - 2), _FONT, scale, color, thickness, cv2.LINE_AA)


def _probability_bars(image: np.ndarray, face: Face, class_names: Sequence[str], scale: float) -> None:
    """One small bar per emotion beside the face (right of it, or left where there is no room)."""
    x, y, w, h = face.box
    row = max(9, round(14 * scale))
    label_width, bar_width = round(62 * scale), round(70 * scale)
    panel_width = label_width + bar_width + 8
    left = x + w + 6 if x + w + 6 + panel_width <= image.shape[1] else max(x - panel_width - 6, 0)
    top = min(max(y, 0), max(image.shape[0] - row * len(class_names) - 4, 0))
    overlay = image.copy()
    cv2.rectangle(overlay, (left, top), (left + panel_width, top + row * len(class_names) + 4), (30, 30, 30), cv2.FILLED)
    cv2.addWeighted(overlay, 0.6, image, 0.4, 0, dst=image)
    text_scale = 0.4 * scale
    for index, name in enumerate(class_names):
        baseline_y = top + (index + 1) * row
        cv2.putText(image, name[:8], (left + 3, baseline_y - 2), _FONT, text_scale, (235, 235, 235), 1, cv2.LINE_AA)
        length = round(bar_width * face.probabilities.get(name, 0.0))
        bar_left = left + label_width
        cv2.rectangle(image, (bar_left, baseline_y - row + 4), (bar_left + max(length, 1), baseline_y - 2), _bgr(emotion_color(name, index)), cv2.FILLED)


def annotate(image_bgr: np.ndarray, faces: Sequence[Face], class_names: Sequence[str]) -> np.ndarray:
    """A copy of a BGR picture with each face's box, "emotion confidence" label and probability bars drawn on."""
    canvas = np.ascontiguousarray(image_bgr).copy()
    scale = max(0.5, min(2.0, max(canvas.shape[:2]) / 800))
    for face in faces:
        x, y, w, h = face.box
        index = list(class_names).index(face.emotion) if face.emotion in class_names else 0
        color = _bgr(emotion_color(face.emotion, index))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), color, max(2, round(2 * scale)), cv2.LINE_AA)
        _text(canvas, f"{face.emotion} {face.confidence:.2f}", (x, y - 4), 0.6 * scale, (255, 255, 255), color)
        _probability_bars(canvas, face, class_names, scale)
    return canvas
