"""Any image file (bytes) -> one square uint8 grayscale array, the form every later stage expects."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from emolens.constants import IMAGE_SIZE

# Refuse decompression bombs before decoding: 64 megapixels is far above any face photo.
MAX_PIXELS = 64_000_000


class UndecodableImage(ValueError):
    """The bytes are not an image emolens can read (corrupt, truncated, not an image, too large)."""


def _to_grayscale(image: Image.Image) -> Image.Image:
    """Converts any PIL mode to 8-bit 'L', scaling high-bit-depth data instead of clipping it."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(pixels * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas would otherwise become whatever colour hides under the alpha (often black).
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L")


def decode_image(data: bytes, *, size: int = IMAGE_SIZE) -> np.ndarray:
    """Decodes image bytes into a (size, size) uint8 grayscale array.

    EXIF orientation is applied, colour and 16-bit images become 8-bit gray, and the whole picture is
    resized to a square (as Keras's `flow_from_directory` does), so already-cropped faces keep their framing.

    Args:
        data: bytes. The file's content.
        size: int. Side of the output square. Defaults to 48.

    Returns:
        A numpy array of shape (size, size), dtype uint8.

    Raises:
        UndecodableImage: the bytes are not a readable image, or it is larger than MAX_PIXELS.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise UndecodableImage(f"image is {image.width}x{image.height}, above {MAX_PIXELS:,} pixels")
                # JPEG can decode straight at a fraction of full size: far faster for big photos.
                image.draft("L", (size, size))
                image = ImageOps.exif_transpose(image)
                gray = _to_grayscale(image)
                if gray.size != (size, size):
                    gray = gray.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
                return np.asarray(gray, dtype=np.uint8).copy()
    except UndecodableImage:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UndecodableImage(str(error) or type(error).__name__) from error
