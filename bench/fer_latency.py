"""The `fer` package (github.com/JustinShenk/fer) timed on one photo, as bench/predict_latency.py times emolens.

Runs in its own environment, because `fer` needs full TensorFlow and pkg_resources beside its own pins; it imports
nothing from emolens. bench/predict_latency.py --fer-python PYTHON runs it in the same sitting and prints its row.
One core, one OpenCV and one TensorFlow thread; `FER()` with its defaults (Haar detector, quantised TFLite model).
Prints one JSON object: faces found, top emotion, and the medians (ms) of 50 calls after 5 warm-up calls of the
whole `detect_emotions` on the photo read from disk, and of its detector alone (`find_faces`).

Set up (no CUDA torch: `fer` imports facenet-pytorch only for mtcnn=True):
  python -m venv ferenv && ferenv/bin/pip install --no-deps fer
  ferenv/bin/pip install tensorflow-cpu "opencv-python-headless<5" pandas requests tqdm pillow matplotlib "setuptools<81"
Usage: ferenv/bin/python bench/fer_latency.py PHOTO
"""

from __future__ import annotations

import json
import logging
import os
import sys

# Timed as the emolens rows are (this script's folder is on sys.path; that module imports only numpy at its top).
from predict_latency import median_ms


def main() -> int:
    if len(sys.argv) != 2:
        raise SystemExit("usage: fer_latency.py PHOTO")
    photo = sys.argv[1]
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import cv2
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cv2.setNumThreads(1)
    from fer.fer import FER  # this release no longer re-exports it from the package

    logging.getLogger("fer").setLevel(logging.WARNING)
    detector = FER()
    image = cv2.imread(photo)
    faces = detector.detect_emotions(image)
    top = max(faces[0]["emotions"].items(), key=lambda item: item[1]) if faces else None
    import fer

    print(
        json.dumps(
            {
                "version": getattr(fer, "__version__", "?"),
                "faces": len(faces),
                "top": f"{top[0]} {top[1]:.2f}" if top else "-",
                "photo_ms": median_ms(lambda: detector.detect_emotions(cv2.imread(photo))),
                "detect_ms": median_ms(lambda: detector.find_faces(image)),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
