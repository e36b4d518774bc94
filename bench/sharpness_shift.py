"""How sharp each split of a dataset is, and what a train/test sharpness gap costs a trained model.

Measures, per split, the median Laplacian standard deviation (a standard focus measure: high = sharp) and the
radially averaged amplitude spectrum; estimates the Gaussian blur (sigma, in pixels) that makes test images as
soft as train images; and, given a trained run, evaluates it on test as it is and on test blurred by that sigma.
If the second accuracy is far higher, the model is fine and the splits differ.

Usage: python bench/sharpness_shift.py [--data ../shared/data/fer2013.zip] [--run runs/seed-...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from emolens.data import load_dataset
from emolens.data.quality import sharpness

ROOT = Path(__file__).resolve().parents[1]
SIGMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0)


def radial_spectrum(images: np.ndarray, bands: int = 8) -> np.ndarray:
    """Mean amplitude in `bands` rings of spatial frequency, lowest (excluding DC) to highest."""
    x = images.astype(np.float32)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True)), axes=(1, 2))).mean(axis=0)
    side = images.shape[1]
    yy, xx = np.meshgrid(np.arange(side) - side // 2, np.arange(side) - side // 2, indexing="ij")
    ring = (np.hypot(yy, xx) * bands / (side // 2)).astype(int)
    return np.array([spectrum[ring == k].mean() for k in range(1, bands)])


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma))) for image in images])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.zip")
    parser.add_argument("--run", type=Path, help="a trained run folder or .keras file to evaluate both ways")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"error: no dataset at {args.data}; pass --data", file=sys.stderr)
        return 2
    dataset = load_dataset(args.data)
    train, test = dataset.split("train"), dataset.split("test")
    print("| split | images | median Laplacian std | amplitude spectrum, low -> high frequency |")
    print("| --- | ---: | ---: | --- |")
    for name, split in (("train", train), ("test", test)):
        print(f"| {name} | {len(split)} | {sharpness(split.images):.1f} | {np.round(radial_spectrum(split.images)).astype(int).tolist()} |")

    sample = test.images[:: max(1, len(test) // 600)]
    target = np.log(radial_spectrum(train.images[:: max(1, len(train) // 3000)]))
    distances = {s: float(np.abs(np.log(radial_spectrum(blur(sample, s))) - target).mean()) for s in SIGMAS}
    sigma = min(distances, key=distances.get)
    print(f"\ntest blurred with a Gaussian of sigma {sigma} px matches train best "
          f"(mean |log spectrum| gap {distances[sigma]:.3f}; unblurred {float(np.abs(np.log(radial_spectrum(sample)) - target).mean()):.3f})")

    if args.run:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import emolens.backend  # noqa: F401  (imports Keras without TensorFlow's start-up chatter)
        from emolens.evaluate import compute_metrics
        from emolens.models.classifier import load_classifier

        trained = load_classifier(args.run, match_sharpness=False)
        matched = load_classifier(args.run)
        to_model = np.array([trained.class_names.index(c) for c in dataset.class_names])
        y_true = to_model[test.labels]
        print(f"\n| {trained.card.get('model', 'model')} on test ({len(test)} images) | accuracy | macro-F1 |")
        print("| --- | ---: | ---: |")
        rows = (
            ("as it is", trained, test.images),
            (f"blurred, sigma {sigma} (chosen on test: an upper bound)", trained, blur(test.images, sigma)),
            ("softened per image to the training sharpness (emolens's default)", matched, test.images),
        )
        for label, classifier, images in rows:
            y_pred = classifier.predict(images).argmax(axis=1)
            metrics = compute_metrics(y_true, y_pred, trained.class_names)
            print(f"| {label} | {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
