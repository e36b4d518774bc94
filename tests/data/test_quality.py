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


def test_inference_preprocessing_only_scales():
    from emolens.data.preprocess import to_model_input

    sharp = faces(4)
    assert np.allclose(to_model_input(sharp), sharp[..., None] / 255.0, atol=1e-6)


def test_evaluate_warns_of_a_sharpness_shift_and_classifies_images_as_they_are(tmp_path):
    import csv

    import keras

    from conftest import CLASSES, png_bytes
    from emolens.data.preprocess import to_model_input
    from emolens.evaluate import evaluate
    from emolens.models import build_model
    from emolens.models.classifier import load_classifier
    from emolens.models.saving import save_model

    keras.utils.set_random_seed(0)
    model = build_model("mini_resnet", num_classes=len(CLASSES))
    model(np.zeros((1, 48, 48, 1), "float32"))
    # Trained on soft images (sharpness 2.4), evaluated on sharp noise (sharpness in the hundreds).
    card = {"model": "mini_resnet", "class_names": list(CLASSES), "input_shape": [48, 48, 1], "train_sharpness": 2.4}
    path = save_model(model, tmp_path / "soft.keras", card)
    noise = np.random.default_rng(1).integers(0, 256, (len(CLASSES), 2, 48, 48), dtype=np.uint8)
    for label, name in enumerate(CLASSES):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i, pixels in enumerate(noise[label]):
            (tmp_path / "data" / name / f"{i}.png").write_bytes(png_bytes(pixels))

    evaluation = evaluate(path, tmp_path / "data", out=tmp_path / "evaluation")
    assert evaluation.sharpness["training"] == 2.4 and evaluation.sharpness["evaluated"] > 100
    assert len(evaluation.warnings) == 1 and "sharper than the training images" in evaluation.warnings[0]
    with open(tmp_path / "evaluation" / "predictions.csv", newline="") as file:
        rows = {row["file"]: [float(row[name]) for name in CLASSES] for row in csv.DictReader(file)}
    classifier = load_classifier(path)
    for label, name in enumerate(CLASSES):
        for i, pixels in enumerate(noise[label]):
            file = next(key for key in rows if key.endswith(f"{name}/{i}.png"))
            # No softening: the probabilities are the network's on the images exactly as decoded.
            assert np.allclose(rows[file], classifier.forward(to_model_input(pixels)), atol=1e-4)
