"""How fast emolens recognises emotions: per photo, per face, in bulk, and from a cold start.

Measures, pinned to one CPU core (os.sched_setaffinity) so the figures hold on the smallest machine:
  - one `Recognizer.predict` on the astronaut portrait (decode, detect, crop, classify): median of 50 calls after
    warm-up, with ONNX Runtime and with Keras;
  - the classifier alone on that photo's one face crop, same protocol;
  - faces per second through the classifier for a batch of 1,000 face crops;
  - the cold start of `emolens predict PHOTO --json`: a new process, from its start to the first result line
    (median of 5), which must not import TensorFlow on the ONNX path.
Targets (issue 3): under 30 ms per photo end to end on one core; cold start under 1.5 s.

Usage: python bench/predict_latency.py [--photo samples/astronaut.png] [--onnx F.onnx] [--keras F.keras]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "emolens" / "weights"
CALLS = 50
WARMUP = 5


def median_ms(function: Callable[[], object], calls: int = CALLS) -> float:
    for _ in range(WARMUP):
        function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(model: Path, photo: Path, crops: np.ndarray, yunet: Path | None = None) -> dict[str, float]:
    from emolens.models.classifier import load_classifier
    from emolens.predict import Recognizer
    from emolens.predict.faces import crop_faces
    from emolens.predict.recognizer import to_gray

    classifier = load_classifier(model, threads=1)
    recognizer = Recognizer(classifier=classifier)
    faces = recognizer.predict(photo)
    assert len(faces) == 1, f"expected one face in {photo}, found {len(faces)}"
    gray, _ = to_gray(photo)
    crop = crop_faces(gray, recognizer.detector.detect(gray), recognizer.detector.framing)
    start = time.perf_counter()
    classifier.predict(crops)
    bulk = time.perf_counter() - start
    figures = {
        "photo_ms": median_ms(lambda: recognizer.predict(photo)),
        "decode_ms": median_ms(lambda: to_gray(photo)),
        "detect_ms": median_ms(lambda: recognizer.detector.detect(gray)),
        "classifier_ms": median_ms(lambda: classifier.predict(crop)),
        "faces_per_s": len(crops) / bulk,
        "top": f"{faces[0].emotion} {faces[0].confidence:.2f}",
    }
    if yunet is not None:
        with_yunet = Recognizer(classifier=classifier, detector="yunet", detector_model=yunet)
        assert len(with_yunet.predict(photo)) == 1, "YuNet should find the one face"
        figures["photo_yunet_ms"] = median_ms(lambda: with_yunet.predict(photo))
    return figures


def cold_start_s(photo: Path, runs: int = 5) -> float:
    """Median seconds from launching `emolens predict` to its first JSON line on stdout."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "emolens", "predict", str(photo), "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = process.stdout.readline()
        times.append(time.perf_counter() - start)
        process.wait()
        if not line.startswith("{") or not json.loads(line)["faces"]:
            raise SystemExit(f"`emolens predict` gave no result (exit status {process.returncode}): is the bundled model installed?")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=ROOT / "samples" / "astronaut.png")
    parser.add_argument("--onnx", type=Path, default=WEIGHTS / "default.onnx")
    parser.add_argument("--keras", type=Path, default=WEIGHTS / "default.keras")
    parser.add_argument("--crops", type=int, default=1000, help="face crops in the bulk batch")
    parser.add_argument("--yunet", type=Path, default=ROOT.parent / "shared" / "models" / "face_detection_yunet_2023mar.onnx", help="YuNet .onnx, also timed when present")
    args = parser.parse_args()

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import cv2

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    # Real crops would do no better or worse: the network's cost does not depend on the pixels.
    crops = rng.integers(0, 256, (args.crops, 48, 48), dtype=np.uint8)

    print(f"Photo {args.photo.name}; one core; median of {CALLS} calls after {WARMUP} warm-up calls.\n")
    yunet = args.yunet if args.yunet.is_file() else None
    print("| engine | one photo, Haar (decode, detect, classify) | decode | Haar detect | classifier alone (1 face) | one photo, YuNet | faces/s (batch of 1,000) | top emotion |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")

    def row(engine: str, f: dict) -> str:
        yunet_ms = f"{f['photo_yunet_ms']:.1f} ms" if "photo_yunet_ms" in f else "(no YuNet file)"
        return (f"| {engine} | {f['photo_ms']:.1f} ms | {f['decode_ms']:.1f} ms | {f['detect_ms']:.1f} ms | {f['classifier_ms']:.2f} ms | "
                f"{yunet_ms} | {f['faces_per_s']:,.0f} | {f['top']} |")

    cold = cold_start_s(args.photo)  # before this process imports anything heavy
    print(row("ONNX Runtime", measure(args.onnx, args.photo, crops, yunet)), flush=True)
    import emolens.backend  # noqa: F401  (Keras, quietly; TensorFlow gets the one core too)

    print(row(f"Keras ({emolens.backend.backend_name()})", measure(args.keras, args.photo, crops, yunet)))
    print(f"\nCold start of `emolens predict {args.photo.name} --json` (process start to first result, median of 5): {cold:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
