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


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM", "AVIF"])
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


def _progressive_jpeg(side: int, extra_scans: int) -> bytes:
    """A flat progressive JPEG whose last (tiny) scan is repeated `extra_scans` times before the end marker."""
    data = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True)
    last_scan = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + last_scan * extra_scans + b"\xff\xd9"


def test_a_progressive_jpeg_with_thousands_of_scans_is_refused_before_decoding(monkeypatch):
    from emolens.data import decode

    bomb = _progressive_jpeg(512, 2000)  # 31 KB; about 0.3 s to decode here, 5 s at 2048x2048
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("the scan bomb was decoded"))
    with pytest.raises(UndecodableImage, match="2,006 scans"):
        decode.decode_photo(bomb)
    assert decode.decoding_bytes(bomb) == 0


def test_ordinary_progressive_jpegs_decode():
    from emolens.data.decode import MAX_JPEG_SCANS, decode_photo

    colour = encode(Image.new("RGB", (64, 48), (200, 100, 50)), "JPEG", progressive=True)
    at_the_cap = _progressive_jpeg(64, MAX_JPEG_SCANS - 6)
    for data in (colour, at_the_cap):
        assert decode_photo(data).shape[:2] in ((48, 64), (64, 64))


def test_a_side_longer_than_any_photo_is_refused_before_decoding():
    from emolens.data.decode import MAX_SIDE, ImageTooLarge, decode_photo, decoding_bytes

    strip = encode(Image.new("1", (1, MAX_SIDE + 1), 0))  # few pixels, but per-row costs for 65,536 rows
    with pytest.raises(ImageTooLarge, match="a side above"):
        decode_photo(strip)
    assert decoding_bytes(strip) == 0


# Every mode each allowed format stores, as Pillow writes it.
ALLOWED_SAMPLES = [
    ("JPEG", "L"),
    ("JPEG", "RGB"),
    ("JPEG", "CMYK"),
    ("PNG", "1"),
    ("PNG", "P"),
    ("PNG", "LA"),
    ("PNG", "RGBA"),
    ("PNG", "I;16"),
    ("WEBP", "RGB"),
    ("WEBP", "RGBA"),
    ("BMP", "P"),
    ("BMP", "RGB"),
    ("GIF", "P"),
    ("GIF", "L"),
    ("TIFF", "I;16"),
    ("TIFF", "F"),
    ("TIFF", "CMYK"),
    ("TIFF", "RGBA"),
    ("PPM", "L"),
    ("PPM", "RGB"),
    ("AVIF", "RGB"),
]


@pytest.mark.parametrize(("fmt", "mode"), ALLOWED_SAMPLES)
def test_the_budget_is_reserved_from_what_each_allowed_format_will_decode(fmt, mode):
    """The rule that keeps ICO-like surprises out: opening decodes nothing, and what loading then decodes is no
    larger than the header said, so the reservation made from the header covers it."""
    from emolens.data.decode import IMAGE_FORMATS, _peak_bytes, decode_photo, decoding_bytes

    assert fmt in IMAGE_FORMATS
    data = encode(Image.new(mode, (40, 30), 100), fmt)
    with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
        assert image._im is None, "the plugin decoded pixels inside Image.open, before the budget was reserved"
        header = (image.size, image.mode)
        reserved = decoding_bytes(data)
        assert reserved == _peak_bytes(image.width, image.height, image.mode)
        image.load()
        assert image.size == header[0]
        assert len(image.tobytes()) <= reserved
    assert decode_photo(data).shape == (30, 40, 3)
