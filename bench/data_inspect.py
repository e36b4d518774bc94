"""How fast `emolens data inspect` is on FER2013, and how often its near-duplicate matches are the same photo.

Speed: the whole command (process start, cached load, checks, terminal report), best of 3, without and with
--near; and inspect_dataset alone. Target: under 10 s for FER2013 once decoded.

Near-duplicate precision: a train image and a test image are taken as the same photo when their pixels differ
by a mean absolute difference under 3 gray levels (random train/test pairs differ by 20 or more). For each pHash distance, the table counts
train/test pairs and how many of them that check confirms.

Usage: python bench/data_inspect.py [--data ../shared/data/fer2013.zip]
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
from load_time import dataset_path

SAME_PHOTO_MAD = 3.0


def best_of(runs: int, command: list[str]) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> int:
    data = dataset_path(__doc__.splitlines()[0])
    if data is None:
        return 2
    from emolens.constants import NEAR_CONSTANT_STD
    from emolens.data import load_dataset
    from emolens.data.inspection import hamming_pairs, inspect_dataset, perceptual_hashes

    dataset = load_dataset(data)  # fills the cache, so the timings below start from decoded arrays
    images = sum(len(split) for split in dataset.splits.values())
    command = [sys.executable, "-m", "emolens", "data", "inspect", str(data)]
    print(f"| {data.name}, {images:,} images | exact checks | with --near |")
    print("| --- | ---: | ---: |")
    print(
        f"| `emolens data inspect` (whole command, best of 3) | {best_of(3, command):.1f} s | "
        f"{best_of(3, [*command, '--near']):.1f} s |"
    )
    timings = {}
    for near in (False, True):
        inspect_dataset(dataset, near=near)  # warm imports
        start = time.perf_counter()
        report = inspect_dataset(dataset, near=near)
        timings[near] = time.perf_counter() - start
    print(f"| inspect_dataset alone | {timings[False]:.2f} s | {timings[True]:.2f} s |")
    print()
    numbers = report.summary()
    print("Findings: " + ", ".join(f"{key} {value}" for key, value in numbers.items()))
    print()

    # Flat images (blank or near-constant) are left out, as inspect leaves them out of the near search.
    train, test = (
        images[images.reshape(len(images), -1).std(axis=1) >= NEAR_CONSTANT_STD]
        for images in (dataset.split("train").images, dataset.split("test").images)
    )
    train_hashes, _ = perceptual_hashes(train)
    test_hashes, _ = perceptual_hashes(test)
    pairs = hamming_pairs(train_hashes, test_hashes, 8, same=False)  # (test, train)
    distance = np.bitwise_count(test_hashes[pairs[:, 0]] ^ train_hashes[pairs[:, 1]])
    same_photo = np.abs(test[pairs[:, 0]].astype(np.float32) - train[pairs[:, 1]]).mean(axis=(1, 2)) < SAME_PHOTO_MAD
    print("| pHash distance | train/test pairs | same photo (confirmed) | cumulative precision |")
    print("| ---: | ---: | ---: | ---: |")
    for bits in range(0, 9, 2):
        upto = distance <= bits
        print(
            f"| {bits} | {int((distance == bits).sum())} | {int(same_photo[distance == bits].sum())} | {same_photo[upto].mean():.0%} |"
        )
    print()
    print(
        f"Test images with a confirmed train copy within 8 bits: {len(set(pairs[same_photo, 0].tolist()))} of {len(test)} (not flat)"
    )
    # How many leaks the hash misses: compare a random sample of test images with every train image, pixel by pixel.
    sample = np.random.default_rng(0).choice(len(test), 300, replace=False)
    leaked, within = 0, 0
    train_pixels = train.astype(np.float32)
    for index in sample:
        copies = np.flatnonzero(np.abs(train_pixels - test[index]).mean(axis=(1, 2)) < SAME_PHOTO_MAD)
        if len(copies):
            leaked += 1
            within += int(np.bitwise_count(test_hashes[index] ^ train_hashes[copies]).min() <= 4)
    print(
        f"Random 300 test images, checked against all of train pixel by pixel: {leaked} have a train copy; "
        f"pHash within 4 bits finds {within} of them."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
