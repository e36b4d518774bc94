import numpy as np
from PIL import Image, ImageFilter

from emolens.data.quality import far_sharper, sharpness, sharpness_mismatch, soften_to_sharpness


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


def test_softening_brings_sharp_images_to_the_target_and_leaves_the_rest():
    sharp = faces()
    blurred = np.stack([np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(3))) for x in sharp])
    target = sharpness(blurred)
    softened, count = soften_to_sharpness(sharp, target)
    assert count == len(sharp) and far_sharper(sharp, target).all()
    assert abs(sharpness(softened) - target) < 0.15 * target
    assert softened.dtype == np.uint8 and not np.array_equal(softened, sharp)
    unchanged, none = soften_to_sharpness(blurred, target)
    assert none == 0 and unchanged is blurred
    assert soften_to_sharpness(sharp, 0.0)[1] == 0  # no recorded training sharpness: nothing to match


def test_inference_preprocessing_softens_only_when_asked():
    from emolens.data.preprocess import to_model_input

    sharp = faces(4)
    assert np.allclose(to_model_input(sharp), sharp[..., None] / 255.0, atol=1e-6)
    matched = to_model_input(sharp, sharpness_target=1.0)
    assert matched.shape == (4, 48, 48, 1) and matched.std() < to_model_input(sharp).std()
