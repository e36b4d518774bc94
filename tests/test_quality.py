import numpy as np
from PIL import Image, ImageFilter

from emolens.data.quality import sharpness, sharpness_mismatch


def faces(count: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (count, 12, 12), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(b).resize((48, 48), Image.NEAREST)) for b in base])


def test_blur_lowers_sharpness_and_flat_images_have_none():
    sharp = faces()
    blurred = np.stack([np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(3))) for x in sharp])
    assert sharpness(sharp) > 5 * sharpness(blurred) > 0
    assert sharpness(np.full((3, 48, 48), 128, np.uint8)) == 0.0
    assert sharpness(np.zeros((0, 48, 48), np.uint8)) == 0.0


def test_mismatch_warns_only_beyond_the_limit():
    assert sharpness_mismatch(40.0, 45.0) is None and sharpness_mismatch(40.0, 20.0) is None
    assert "19x sharper" in sharpness_mismatch(2.4, 45.0)
    assert "blurrier" in sharpness_mismatch(45.0, 2.4)
    assert sharpness_mismatch(0.0, 45.0) is None
