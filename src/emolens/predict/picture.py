"""A decoded picture, the unit every later stage of prediction works on, and how in-memory inputs (file paths,
bytes, PIL images, numpy arrays) become one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from emolens._io import read_file
from emolens.data.decode import decode_photo, pil_to_rgb
from emolens.data.preprocess import gray_from_rgb

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image
Color = Literal["rgb", "bgr"]


@dataclass(frozen=True)
class Picture:
    """One decoded picture to find faces in: gray for the detector, the picture itself (RGB or gray) to draw on;
    both None for a picture that could not be read, whose `error` says why.

    Video frames carry their index and time, the rate of analysed frames (for writing them as a video) and
    `live` for cameras, which deliver frames only as fast as they are analysed.
    """

    source: str
    name: str
    gray: np.ndarray | None
    image: np.ndarray | None
    decode_ms: float = 0.0
    frame: int | None = None
    time: float | None = None
    fps: float | None = None
    live: bool = False
    error: str | None = None


def to_gray(image: ImageInput, color: Color | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One image input -> (gray (H, W) uint8, the picture: RGB (H, W, 3) uint8, or the gray one for gray input).

    Files and bytes are decoded with the same mode handling as training data (EXIF rotation, 16-bit, CMYK,
    transparency). A 3- or 4-channel numpy array needs `color` ("rgb" or "bgr"): OpenCV gives BGR, most others RGB,
    and guessing wrong silently changes the gray levels.

    Raises:
        UndecodableImage: the file or bytes are not a readable image.
        OSError: the file cannot be read (missing, not a regular file, above `emolens._io.MAX_FILE_BYTES`).
    """
    if isinstance(image, (str, os.PathLike)):
        image = read_file(image)
    if isinstance(image, (bytes, Image.Image)):
        rgb = decode_photo(image) if isinstance(image, bytes) else pil_to_rgb(image)
        return gray_from_rgb(rgb), rgb
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"Expected a uint8 image array. Received: dtype={array.dtype}")
    if array.ndim == 2:
        return array, array
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(
            f"Expected an image array of shape (H, W), (H, W, 3) or (H, W, 4). Received: shape={array.shape}"
        )
    if color not in ("rgb", "bgr"):
        raise ValueError("A colour image array needs color='rgb' or color='bgr' (OpenCV arrays are BGR).")
    rgb = np.ascontiguousarray(array[..., :3] if color == "rgb" else array[..., 2::-1])
    return gray_from_rgb(rgb), rgb
