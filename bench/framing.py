"""How each face detector's box sits on FER2013's own framing: the crop correction `Framing` in emolens.predict.

FER2013's faces were cropped around a detector's box, so emolens crops new faces the same way. This runs every
registered detector on FER2013 test faces, each upscaled 4x (48 -> 192 px, as faces in photos are larger) and
set in a replicated-border canvas three times its side, and compares the box found with the image's own frame:
median box width and height as fractions of the frame side, and the box centre's offset from the frame centre
(positive: lower). The Framing that maps the box back to the frame is scale = 1 / median(max(w, h) / side) and
dy = -median(centre offset), the crop side being the frame side.

Usage: python bench/framing.py [--data ../shared/data/fer2013.zip] [--limit N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from emolens.data import load_dataset
from emolens.predict.detectors import DetectorConfig, detector_names

ROOT = Path(__file__).resolve().parents[1]
UPSCALE = 4


def measure(detector_name: str, images: np.ndarray) -> dict[str, float]:
    detector = DetectorConfig(detector_name, min_face=40).build()
    side = images.shape[1] * UPSCALE
    widths, heights, offsets, sides = [], [], [], []
    for image in images:
        face = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.copyMakeBorder(face, side, side, side, side, cv2.BORDER_REPLICATE)
        boxes = detector.detect(canvas).boxes
        if len(boxes) == 0:
            continue
        _, y, w, h = max(boxes, key=lambda box: box[2] * box[3])  # the largest: the face, not a speck
        widths.append(w / side)
        heights.append(h / side)
        offsets.append((y + h / 2 - (side + side / 2)) / side)
        sides.append(max(w, h) / side)
    found = len(widths)
    median_side = float(np.median(sides))
    return {
        "found": found,
        "of": len(images),
        "width": float(np.median(widths)),
        "height": float(np.median(heights)),
        "centre_offset": float(np.median(offsets)),
        "scale": 1 / median_side,
        "dy": -float(np.median(offsets)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013.zip"))
    parser.add_argument("--limit", type=int, help="use only the first N test images (default: all)")
    args = parser.parse_args()
    images = load_dataset(args.data).split("test").images[: args.limit]
    print(f"FER2013 test faces: {len(images)}, upscaled {UPSCALE}x, in a replicated-border canvas\n")
    print("| detector | found | median width | median height | centre offset (down +) | Framing scale | Framing dy |")
    print("|---|---|---|---|---|---|---|")
    for name in detector_names():
        m = measure(name, images)
        print(
            f"| {name} | {m['found']}/{m['of']} | {m['width']:.3f} | {m['height']:.3f} | {m['centre_offset']:+.3f} | "
            f"1/{1 / m['scale']:.3f} | {m['dy']:.3f} |"
        )


if __name__ == "__main__":
    main()
