"""How a detector's box becomes the classifier's crop: FER2013's faces were framed by a face detector, so each
detector's box maps to that framing by a fixed scale and shift (`Framing`, measured by `bench/framing.py` on
FER2013's own test faces), and the face is cut out as that square (`crop_squares`, `crop_faces`)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from emolens.data.preprocess import resize_face


@dataclass(frozen=True)
class Framing:
    """How a detector's box maps to a FER2013-style square crop: side = scale * max(w, h), centre moved down by dy * side.

    Examples:
        >>> crop_squares(np.array([[20, 20, 40, 40]]), Framing(scale=1.5, dy=0.0)).tolist()   # x, y, side
        [[10, 10, 60]]
    """

    scale: float
    dy: float


def crop_squares(boxes: np.ndarray, framing: Framing) -> np.ndarray:
    """The square each face is cropped from, (K, 3) ints: left x, top y and side in the picture's pixels
    (it may reach past the picture's edge).

    Examples:
        >>> crop_squares(np.array([[20, 20, 40, 40]]), Framing(scale=1.5, dy=0.0)).tolist()
        [[10, 10, 60]]
    """
    squares = np.empty((len(boxes), 3), dtype=np.int64)
    for i, (x, y, w, h) in enumerate(boxes):
        side = framing.scale * max(w, h)
        cx, cy = x + w / 2, y + h / 2 + framing.dy * side
        squares[i] = round(cx - side / 2), round(cy - side / 2), round(side)
    return squares


def crop_faces(gray: np.ndarray, boxes: np.ndarray, framing: Framing, size: int = 48) -> np.ndarray:
    """Square crops (K, size, size) uint8 around each box, framed as FER2013 frames faces (see `crop_squares`).

    Crops reaching past the photo's edge are filled by replicating the edge pixels, as a face at the border
    would otherwise be squashed or shifted.

    Examples:
        >>> crop_faces(np.zeros((100, 100), np.uint8), np.array([[20, 20, 40, 40]]), Framing(scale=1.0, dy=0.0)).shape
        (1, 48, 48)
    """
    crops = np.empty((len(boxes), size, size), dtype=np.uint8)
    height, width = gray.shape
    for i, (x0, y0, side) in enumerate(crop_squares(boxes, framing)):
        x1, y1 = x0 + side, y0 + side
        inside = gray[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
        square = cv2.copyMakeBorder(
            inside, max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0), cv2.BORDER_REPLICATE
        )
        crops[i] = resize_face(square, size)
    return crops


__all__ = ["Framing", "crop_faces", "crop_squares"]
