"""Any image file (bytes) -> one square uint8 grayscale array, the form every later stage expects."""

from __future__ import annotations

import io
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps

from emolens._native import release_free_memory
from emolens.constants import IMAGE_SIZE
from emolens.data.preprocess import gray_from_rgb, resize_face

# Refuse decompression bombs before decoding: 64 megapixels is far above any face photo.
MAX_PIXELS = 64_000_000
# Decoders also spend memory per row (PNG keeps a pointer and a filter buffer per row): a 1x64,000,000 PNG took
# 1.8 GB. No camera or scanner makes a side longer than JPEG's own limit.
MAX_SIDE = 65_535
# A progressive JPEG costs a pass over the whole picture per scan: a 48 KB file that repeats a 16-byte scan 2,000
# times took 5 s to decode at 2048x2048. Encoders write up to about 10 (a few more with thumbnails or MPO pages).
MAX_JPEG_SCANS = 100

# The only formats emolens decodes, whatever a file's name says: what cameras, phones, browsers and datasets
# produce (JPEG includes the camera JPEGs Pillow reads as MPO; PPM also reads PGM). Pillow would otherwise try every
# plugin it has, and some hand the file to an external program (EPS and PDF to Ghostscript) or decode a frame the
# header did not size (ICO); those formats are never opened.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM", "AVIF")
NOT_AN_IMAGE = f"not an image format emolens reads ({', '.join(IMAGE_FORMATS)})"
# What Pillow's decoders raise on damaged files, besides OSError and ValueError: a fuzzed or corrupt file must
# become "not a readable image", never an exception that escapes.
_DECODER_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    RuntimeError,
    NotImplementedError,
    KeyError,
    AttributeError,
    IndexError,
    TypeError,
    EOFError,
    ZeroDivisionError,
    struct.error,
)


class UndecodableImage(ValueError):
    """The bytes are not an image emolens can read (corrupt, truncated, not an image, too large)."""


class ImageTooLarge(UndecodableImage):
    """The image has more pixels than MAX_PIXELS (a decompression bomb, or simply too big to be a face photo)."""


_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# Decoding keeps the stored pixels and makes up to about three converted copies (alpha flattened on white,
# RGB, the array, gray) before the stored ones are freed: bytes at the peak per pixel, beyond the stored ones.
_CONVERSION_BYTES_PER_PIXEL = 10
# And per row, what decoders keep beside the pixels (row pointers, filter and interlace buffers).
_BYTES_PER_ROW = 64


class MemoryBudget:
    """A bound on the bytes that decoding pictures may hold at once, across threads.

    A decode reserves its picture's peak (from the header's size and mode) before decoding, and waits while
    others hold the budget; a picture larger than the whole budget waits until it can decode alone. A thread's
    reservations nest: a caller that reserved for a whole request (as serve does, for decoding and detecting)
    is not charged again by the decode inside it.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.in_use = 0
        self._changed = threading.Condition()
        self._held = threading.local()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        if getattr(self._held, "depth", 0):
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        nbytes = min(nbytes, self.limit_bytes)
        with self._changed:
            self._changed.wait_for(lambda: self.in_use == 0 or self.in_use + nbytes <= self.limit_bytes)
            self.in_use += nbytes
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            if nbytes >= 64 * 1024 * 1024:
                # Before the next decode starts, in another thread's malloc arena, while this one's sits unused.
                release_free_memory()
            with self._changed:
                self.in_use -= nbytes
                self._changed.notify_all()


# 1 GB: one worst-case picture (64 megapixels of RGBA, with its copies) at a time, or dozens of camera photos.
DECODE_BUDGET = MemoryBudget(1024 * 1024 * 1024)


def _peak_bytes(width: int, height: int, mode: str) -> int:
    stored = Image.getmodebands(mode) * (2 if mode.startswith("I;16") else 4 if mode in ("I", "F") else 1)
    return width * height * (stored + _CONVERSION_BYTES_PER_PIXEL) + height * _BYTES_PER_ROW


def decoding_bytes(data: bytes) -> int:
    """What decoding `data` as a photo takes at its peak, from its header alone (0 if it has no readable header
    or will be refused: decoding it will fail at once)."""
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            _check_decoding_cost(image, data)
            return _peak_bytes(image.width, image.height, image.mode)
    except Exception:  # noqa: BLE001  (Pillow raises many kinds for a bad header; the decode reports it properly)
        return 0


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composites transparent images on white: hidden pixels under the alpha are often black."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Pasted through its alpha onto opaque white: one RGB copy, where alpha_composite made three RGBA ones.
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        flattened = Image.new("RGB", rgba.size, (255, 255, 255))
        flattened.paste(rgba, mask=rgba.getchannel("A"))
        return flattened
    return image


def _to_grayscale(image: Image.Image) -> Image.Image:
    """Converts any PIL mode to 8-bit 'L', scaling high-bit-depth data instead of clipping it."""
    if image.mode in _HIGH_BIT_MODES:
        # float32, scaled in place: a 64-megapixel 16-bit image needs 256 MB here, not several float64 copies.
        pixels = np.array(image, dtype=np.float32)  # a writable copy, even of an "F" image
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
        pixels *= 255.0 / top
        np.clip(pixels, 0, 255, out=pixels)
        return Image.fromarray(np.rint(pixels, out=pixels).astype(np.uint8), "L")
    return _flatten_alpha(image).convert("L")


def _check_decoding_cost(image: Image.Image, data: bytes) -> None:
    """Refuses, from the header alone, a picture whose decoding would take more memory or time than any photo."""
    if image.width * image.height > MAX_PIXELS:
        raise ImageTooLarge(f"image is {image.width}x{image.height}, above {MAX_PIXELS:,} pixels")
    if max(image.size) > MAX_SIDE:
        raise ImageTooLarge(f"image is {image.width}x{image.height}, a side above {MAX_SIDE:,} pixels")
    if image.format in ("JPEG", "MPO") and (scans := data.count(b"\xff\xda")) > MAX_JPEG_SCANS:
        # Entropy-coded data stuffs every 0xFF with 0x00, so FF DA in a JPEG is only ever a start-of-scan marker.
        raise UndecodableImage(
            f"a JPEG with {scans:,} scans, above {MAX_JPEG_SCANS} (each one decodes the whole picture again)"
        )


@contextmanager
def _open_image(data: bytes, *, draft_size: int | None = None) -> Iterator[tuple[Image.Image, str]]:
    """Opens image bytes upright (EXIF orientation applied), refusing anything above MAX_PIXELS.

    Yields the image and its stored format, "WIDTHxHEIGHT MODE", read before any draft-mode reduction.

    Every decoding error, whatever library raised it, becomes UndecodableImage.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                _check_decoding_cost(image, data)
                original = f"{image.width}x{image.height} {image.mode}"
                if draft_size is not None:
                    # JPEG can decode straight at a fraction of full size: far faster for big photos.
                    image.draft("L", (draft_size, draft_size))
                with DECODE_BUDGET.reserve(_peak_bytes(image.width, image.height, image.mode)):
                    # In place: exif_transpose otherwise returns a whole copy even when nothing is turned.
                    ImageOps.exif_transpose(image, in_place=True)
                    yield image, original
    except UndecodableImage:
        raise
    except Image.UnidentifiedImageError as error:
        raise UndecodableImage(NOT_AN_IMAGE) from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLarge(str(error) or type(error).__name__) from error
    except _DECODER_ERRORS as error:
        raise UndecodableImage(str(error) or type(error).__name__) from error


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
    return decode_face(data, size=size)[0]


def decode_face(data: bytes, *, size: int = IMAGE_SIZE) -> tuple[np.ndarray, str]:
    """`decode_image`, also returning the file's own format as "WIDTHxHEIGHT MODE" (e.g. "48x48 L", "640x480 RGB").

    The format lets `emolens data inspect` name images that were not 48x48 grayscale before decoding.
    """
    with _open_image(data, draft_size=size) as (image, original):
        # Gray and resized by the rules prediction uses (emolens.data.preprocess), so a face file and the same
        # face cropped from a photo become the same pixels.
        gray = np.array(image, dtype=np.uint8) if image.mode == "L" else gray_from_rgb(_rgb_array(image))
        return resize_face(gray, size), original


def decode_photo(data: bytes) -> np.ndarray:
    """Decodes image bytes into a full-size (H, W, 3) uint8 RGB array, for finding and cropping faces.

    Modes are handled as in `decode_image` (16-bit scaled, transparency on white, CMYK and palette converted),
    so a face cropped from a photo is gray-converted exactly as the training images were.

    Raises:
        UndecodableImage: the bytes are not a readable image, or it is larger than MAX_PIXELS.
    """
    with _open_image(data) as (image, _):
        return _rgb_array(image)


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """A PIL image of any mode, turned upright by its EXIF orientation, as an (H, W, 3) uint8 RGB array (see
    `decode_photo`)."""
    return _rgb_array(ImageOps.exif_transpose(image))


def _rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode not in ("RGB", "L"):
        image = _to_grayscale(image) if image.mode in _HIGH_BIT_MODES else _flatten_alpha(image)
    return np.array(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)  # np.array: writable
