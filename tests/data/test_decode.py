import io
import re

import numpy as np
import pytest
from PIL import Image

from emolens.data.decode import MAX_PIXELS, UndecodableImage, decode_image


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_gray_48_passes_through_unchanged():
    pixels = np.arange(48 * 48, dtype=np.uint16).reshape(48, 48).astype(np.uint8)
    out = decode_image(encode(Image.fromarray(pixels, "L")))
    assert out.dtype == np.uint8 and out.shape == (48, 48)
    np.testing.assert_array_equal(out, pixels)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "CMYK", "LA", "1"])
def test_any_mode_becomes_48x48_gray(mode):
    image = Image.new("RGB", (100, 80), (200, 30, 30)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = decode_image(encode(image, fmt))
    assert out.shape == (48, 48) and out.dtype == np.uint8


def test_sixteen_bit_is_scaled_not_clipped():
    pixels = np.full((60, 60), 30000, np.uint16)
    image = Image.fromarray(pixels)
    assert image.mode.startswith("I")
    out = decode_image(encode(image))
    # 30000 / 65535 * 255 = 116.7; clipping would give 255.
    assert abs(int(out[24, 24]) - 117) <= 1


def test_transparent_pixels_become_white():
    rgba = np.zeros((48, 48, 4), np.uint8)  # fully transparent black
    out = decode_image(encode(Image.fromarray(rgba, "RGBA")))
    assert out.min() == 255


def test_exif_rotation_is_applied():
    pixels = np.zeros((40, 80), np.uint8)
    pixels[:, :40] = 255  # white on the left half of a wide image
    image = Image.fromarray(pixels, "L")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the left half ends up on top
    out = decode_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert out[:20].mean() > 200 and out[28:].mean() < 50


@pytest.mark.parametrize("data", [b"", b"hello, I am text", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_not_an_image_raises(data):
    with pytest.raises(UndecodableImage):
        decode_image(data)


def test_truncated_jpeg_raises():
    data = encode(Image.new("L", (200, 200), 128), "JPEG")
    with pytest.raises(UndecodableImage):
        decode_image(data[: len(data) // 3])


def test_decompression_bomb_is_refused_before_decoding():
    side = int(MAX_PIXELS**0.5) + 100
    # A 1-bit PNG of that size is tiny on disk but huge once decoded.
    data = encode(Image.new("1", (side, side), 0))
    with pytest.raises(UndecodableImage, match="pixels"):
        decode_image(data)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 48 48\n0 0 moveto 48 48 lineto stroke\nshowpage\n%%EOF\n"


def _saved(fmt: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (48, 48), 128).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["ICO", "PCX", "TGA", "SGI", "DDS", "QOI", "SPIDER", "BLP"])
def test_formats_outside_the_allowlist_are_refused_whatever_pillow_can_read(fmt):
    from emolens.data.decode import IMAGE_FORMATS, NOT_AN_IMAGE, decode_photo

    data = _saved(fmt, "F" if fmt == "SPIDER" else "P" if fmt == "BLP" else "RGB")
    assert Image.open(io.BytesIO(data)).format not in IMAGE_FORMATS  # Pillow itself reads it...
    with pytest.raises(UndecodableImage, match=re.escape(NOT_AN_IMAGE)):  # ...emolens does not
        decode_photo(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM"])
def test_the_allowed_formats_decode(fmt):
    assert decode_image(_saved(fmt)).shape == (48, 48)


def test_an_eps_file_never_reaches_ghostscript_whatever_its_name(monkeypatch, tmp_path):
    from PIL import EpsImagePlugin

    from emolens.data.decode import NOT_AN_IMAGE, decoding_bytes

    def ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript was started")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    with pytest.raises(UndecodableImage, match=re.escape(NOT_AN_IMAGE)):
        decode_image(EPS)
    assert decoding_bytes(EPS) == 0
