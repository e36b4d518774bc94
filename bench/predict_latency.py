"""How fast emolens recognises emotions, with each face detector side by side in one run.

Pinned to one CPU core (os.sched_setaffinity, one OpenCV and one ONNX Runtime thread) so the figures hold on the
smallest machine, with the bundled model:
  - one `Recognizer.predict` on the 512 px astronaut portrait, end to end (decode, detect, crop, classify):
    median of 50 calls after warm-up, and its stages as the Result's `speed` reports them;
  - one 2,000 px wide group photo (the portrait's face pasted ten times, some turned), end to end;
  - faces per second over a folder of 20 such group photos (`predict(folder)`, classified in shared batches);
  - the classifier alone: faces per second for a batch of 1,000 crops;
  - the cold start of `emolens predict PHOTO --json`: a new process, from its start to the first result line
    (median of 5), which must not import TensorFlow;
  - with --fer-python, the `fer` package on the same portrait and core, in its own environment
    (bench/fer_latency.py says how to make one).
Targets (issue 12): the portrait in at most 20 ms with the default detector, and at least 3x faster than Haar.

Usage: python bench/predict_latency.py [--photo samples/astronaut.png] [--model default] [--fer-python ferenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CALLS = 50
WARMUP = 5
GROUP_ANGLES = (0, 25, -30, 10, 35, -25, 0, 30, -35, 15)


def median_ms(function: Callable[[], object], calls: int = CALLS) -> float:
    for _ in range(WARMUP):
        function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def group_photo(photo: Path, width: int = 2000) -> np.ndarray:
    """The portrait's head pasted ten times (five a row, some turned) onto a gray RGB canvas `width` px wide."""
    import cv2
    from PIL import Image

    head = np.asarray(Image.open(photo).convert("RGB"))[20:230, 120:330]
    side = width // 5 - 40
    canvas = np.full((2 * (side + 80) + 40, width, 3), 128, np.uint8)
    for index, angle in enumerate(GROUP_ANGLES):
        turn = cv2.getRotationMatrix2D((105, 105), angle, 1.0)
        face = cv2.resize(cv2.warpAffine(head, turn, (210, 210), borderMode=cv2.BORDER_REPLICATE), (side, side))
        x, y = 20 + (index % 5) * (side + 40), 60 + (index // 5) * (side + 80)
        canvas[y : y + side, x : x + side] = face
    return canvas


def measure(model: str, detector: str, photo: Path, group: Path, folder: Path) -> dict[str, object]:
    from emolens.models.classifier import load_classifier
    from emolens.predict import Recognizer

    recognizer = Recognizer(classifier=load_classifier(model, threads=1), detector=detector)
    (result,) = recognizer.predict(photo)
    stages = [recognizer.predict(photo)[0].speed for _ in range(CALLS)]
    started = time.perf_counter()
    folder_faces = sum(len(r.faces) for r in recognizer.predict(folder, stream=True))
    folder_s = time.perf_counter() - started
    return {
        "faces": len(result.faces),
        "top": f"{result.faces[0].emotion} {result.faces[0].confidence:.2f}" if result.faces else "-",
        "photo_ms": median_ms(lambda: recognizer.predict(photo)),
        "stages": {stage: statistics.median(s[stage] for s in stages) for stage in stages[0]},
        "group_faces": len(recognizer.predict(group)[0].faces),
        "group_ms": median_ms(lambda: recognizer.predict(group), calls=10),
        "folder_faces_per_s": folder_faces / folder_s,
    }


def cold_start_s(photo: Path, runs: int = 5) -> float:
    """Median seconds from launching `emolens predict` to its first JSON line on stdout."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "emolens", "predict", str(photo), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = process.stdout.readline()
        times.append(time.perf_counter() - start)
        process.wait()
        if not line.startswith("{") or not json.loads(line)["faces"]:
            raise SystemExit(
                f"`emolens predict` gave no result (exit status {process.returncode}): is the bundled model installed?"
            )
    return statistics.median(times)


def fer_figures(python: Path, photo: Path) -> dict[str, object]:
    """bench/fer_latency.py's JSON, run by `python` (an environment with the `fer` package)."""
    done = subprocess.run(
        [str(python), str(ROOT / "bench" / "fer_latency.py"), str(photo)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"bench/fer_latency.py failed under {python}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=ROOT / "samples" / "astronaut.png")
    parser.add_argument("--model", default="default", help="the classifier (default: the bundled model)")
    parser.add_argument("--crops", type=int, default=1000, help="face crops in the classifier's bulk batch")
    parser.add_argument("--fer-python", type=Path, help="a Python with the `fer` package, to time it in the same run")
    args = parser.parse_args()

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import cv2
    from PIL import Image

    from emolens.models.classifier import load_classifier
    from emolens.predict.detectors import DEFAULT_DETECTOR, detector_names

    cv2.setNumThreads(1)
    cold = cold_start_s(args.photo)  # before this process imports anything heavy
    with tempfile.TemporaryDirectory() as scratch:
        group = Path(scratch) / "group.jpg"
        group_pixels = group_photo(args.photo)
        Image.fromarray(group_pixels).save(group, quality=92)
        folder = Path(scratch) / "album"
        folder.mkdir()
        for index in range(20):
            (folder / f"{index:02d}.jpg").write_bytes(group.read_bytes())
        figures = {name: measure(args.model, name, args.photo, group, folder) for name in detector_names()}
    classifier = load_classifier(args.model, threads=1)
    # Real crops would do no better or worse: the network's cost does not depend on the pixels.
    crops = np.random.default_rng(0).integers(
        0, 256, (args.crops, classifier.input_size, classifier.input_size), dtype=np.uint8
    )
    started = time.perf_counter()
    classifier.predict(crops)
    faces_per_s = args.crops / (time.perf_counter() - started)

    width, height = Image.open(args.photo).size
    print(
        f"One core; {args.photo.name} ({width}x{height}, one face) median of {CALLS} calls after {WARMUP} warm-up calls; "
        f"group photo {group_pixels.shape[1]}x{group_pixels.shape[0]} px, 10 faces (6 turned 25-35 degrees), median of 10; "
        "folder: 20 such photos.\n"
    )
    print(
        "| detector | portrait, end to end | decode | detect | classify | faces found (portrait / group) | group photo "
        "| folder, faces/s | top emotion |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, f in figures.items():
        s = f["stages"]
        label = f"{name} (default)" if name == DEFAULT_DETECTOR else name
        print(
            f"| {label} | {f['photo_ms']:.1f} ms | {s['decode']:.1f} ms | {s['detect']:.1f} ms | {s['classify']:.2f} ms | "
            f"{f['faces']} / {f['group_faces']} | {f['group_ms']:.0f} ms | {f['folder_faces_per_s']:.0f} | {f['top']} |"
        )
    default = figures[DEFAULT_DETECTOR]["photo_ms"]
    for name, f in figures.items():
        if name != DEFAULT_DETECTOR:
            print(
                f"\n{DEFAULT_DETECTOR} is {f['photo_ms'] / default:.1f}x faster than {name} on the portrait end to end."
            )
    if args.fer_python:
        fer = fer_figures(args.fer_python, args.photo)
        print(
            f"The `fer` package {fer['version']} (FER() defaults: Haar, TFLite), same core and portrait: {fer['photo_ms']:.1f} ms "
            f"end to end, {fer['detect_ms']:.1f} ms of it its detector; {fer['faces']} face(s), {fer['top']}. "
            f"emolens's default is {fer['photo_ms'] / default:.1f}x faster."
        )
    print(f"Classifier alone: {faces_per_s:,.0f} faces/s (batch of {args.crops:,} crops).")
    print(
        f"Cold start of `emolens predict {args.photo.name} --json` (process start to first result, median of 5): {cold:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
