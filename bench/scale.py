"""Past one process: batch prediction on Ray Data against one process, and data-parallel training steps.

1. Batch prediction on the same inputs, PHOTOS photo-like pictures (the sample portrait scaled, turned,
   mirrored and dimmed on canvases of 400-900 px, one face each; generated, JPEG):
     - one process: `Recognizer().predict(folder, stream=True)`, as `emolens predict folder --json` runs it
       (a thread per core decoding and detecting, ONNX Runtime on every core); the same without the pool
       (workers=1, OpenCV and ONNX Runtime splitting each picture over the cores: the engine before issue 30);
       and on one thread (what one actor does, without Ray). The answers must be the same in all three;
     - `predict_to_parquet(folder, out, workers=N)` for N in --workers (1 and 2): a local Ray started and stopped by the
       call, actors on one thread each; its total time, and Ray's start (ray.init) within it;
     - Ray's fixed cost: the same call on 8 pictures, and from it the rate once the actors run.
   Targets (issue 30): one process at least 1.7x one thread on 2 cores, same answers; Ray 2 workers at least
   1.7x one process on one thread, for a job of more than a minute.
2. With --driver N,N,...: the Ray driver on a .txt list of N synthetic paths (naming 8 photos in turn), in a
   process of its own per N: seconds to list the inputs, to the first finished picture, and the driver's peak
   private memory (RssAnon, sampled every 50 ms; the object store's shared pages are not the driver's).
   Target (issue 30): flat in N.
3. Data-parallel training (JAX backend, `XLA_FLAGS=--xla_force_host_platform_device_count=2`): mini_resnet on
   a synthetic dataset, steps per second of the second epoch (the first compiles) on 1 and 2 virtual devices of
   one CPU, each in its own process. Two virtual devices share the same cores: this checks the mechanism, not
   a speed-up.

Usage: python bench/scale.py [--photos 2000] [--workers 1,2] [--no-train] [--driver 100000,1000000,10000000]
(--photos 0 skips the batch prediction rows)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "samples" / "astronaut.png"

TRAIN_SCRIPT = """
import json, sys
from emolens.train import train
from emolens.train.config import TrainConfig
result = train(sys.argv[1], TrainConfig(model="mini_resnet", epochs=2, batch_size=64, learning_rate=1e-3), out=sys.argv[2], verbose=0,
               devices=int(sys.argv[3]))
print(json.dumps({"seconds": result.history[1]["seconds"]}))
"""

DRIVER_SCRIPT = """
import json, resource, sys, threading, time
from contextlib import contextmanager
from emolens.predict import ray_engine

began = time.perf_counter()
marks, peak = {}, [0]

def sample():
    while True:
        with open("/proc/self/status") as status:
            peak[0] = max([peak[0]] + [int(line.split()[1]) for line in status if line.startswith("RssAnon:")])
        time.sleep(0.05)

threading.Thread(target=sample, daemon=True).start()
write = ray_engine._Listing.write

def timed_write(self, *args):
    write(self, *args)
    marks["listed"] = time.perf_counter() - began

class FirstResult(Exception):
    pass

@contextmanager
def progress_bar(total, description):
    def advance(steps):
        if steps > 0:
            marks["first"] = time.perf_counter() - began
            raise FirstResult
    yield advance

ray_engine._Listing.write, ray_engine.progress_bar = timed_write, progress_bar
try:
    ray_engine.predict_to_parquet(sys.argv[1], sys.argv[2], workers=2)
except FirstResult:
    pass
print(json.dumps({**marks, "peak_anon_mb": peak[0] / 1024, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def driver_figures(scratch: Path, counts: list[int]) -> None:
    """The Ray driver on lists of N synthetic paths, to its first finished picture (see the module's docstring)."""
    photos = photo_like(scratch / "listed", 8)
    print("\nThe Ray driver on a list of N paths (8 photos named in turn), stopped at its first finished picture:\n")
    print("| inputs | listing, s | first result, s | driver's peak private memory, MB | its peak RSS, MB |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for count in counts:
        listing = scratch / f"list{count}.txt"
        with listing.open("w") as file:
            for index in range(count):
                file.write(f"{photos.name}/{index % 8:05d}.jpg\n")
        done = subprocess.run(
            [sys.executable, "-c", DRIVER_SCRIPT, str(listing), str(scratch / f"driver{count}")],
            capture_output=True,
            text=True,
            cwd=scratch,
        )
        if done.returncode != 0:
            raise SystemExit(f"the driver on {count} inputs failed: {done.stderr[-2000:]}")
        marks = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {count:,} | {marks['listed']:.1f} | {marks['first']:.1f} | {marks['peak_anon_mb']:.0f} | {marks['maxrss_mb']:.0f} |",
            flush=True,
        )
        listing.unlink()


def photo_like(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    portrait = Image.open(PORTRAIT).convert("RGB")
    rng = np.random.default_rng(0)
    for index in range(count):
        background = tuple(int(v) for v in rng.integers(0, 256, 3))
        picture = portrait.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR, fillcolor=background)
        if index % 2:
            picture = picture.transpose(Image.FLIP_LEFT_RIGHT)
        picture = ImageEnhance.Brightness(picture).enhance(float(rng.uniform(0.6, 1.3)))
        side = int(rng.integers(250, 600))
        canvas = Image.new("RGB", (side + int(rng.integers(100, 300)), side + int(rng.integers(50, 200))), background)
        canvas.paste(
            picture.resize((side, side), Image.BILINEAR),
            (int(rng.integers(0, canvas.width - side)), int(rng.integers(0, canvas.height - side))),
        )
        canvas.save(folder / f"{index:05d}.jpg", quality=90)
    return folder


def one_process(folder: Path, *, workers: int | None = None, one_thread: bool = False) -> tuple[float, list]:
    """Seconds for `Recognizer(workers=workers).predict(folder)`, and its answers (each face's box and emotion)."""
    import cv2

    from emolens.models.classifier import DEFAULT_MODEL, load_classifier
    from emolens.predict import Recognizer

    threads = cv2.getNumThreads()
    if one_thread:  # as an actor runs: OpenCV (decoding, YuNet) and ONNX Runtime on one thread each
        cv2.setNumThreads(1)
    try:
        recognizer = Recognizer(
            classifier=load_classifier(DEFAULT_MODEL, threads=1 if one_thread else None), workers=workers
        )
        started = time.perf_counter()
        answers = [
            [(face.box, face.emotion) for face in result.faces] for result in recognizer.predict(folder, stream=True)
        ]
        return time.perf_counter() - started, answers
    finally:
        cv2.setNumThreads(threads)


def on_ray(folder: Path, workers: int, scratch: Path):
    from emolens.predict.ray_engine import predict_to_parquet

    return predict_to_parquet(folder, scratch / f"ray-{folder.name}-{workers}", workers=workers)


def training_seconds(data: Path, scratch: Path, devices: int) -> float:
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(data), str(scratch / f"train{devices}"), str(devices)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"training on {devices} device(s) failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def batch_figures(scratch: Path, photos: int, worker_counts: list[int]) -> None:
    """The batch prediction rows (see the module's docstring)."""
    folder = photo_like(scratch / "photos", photos)
    small = photo_like(scratch / "few", 8)
    single_s, answers = one_process(folder)
    unpooled_s, unpooled_answers = one_process(folder, workers=1)
    one_thread_s, one_thread_answers = one_process(folder, workers=1, one_thread=True)
    pictures = len(answers)
    same = answers == unpooled_answers == one_thread_answers
    print(
        f"Batch prediction, {pictures} photo-like pictures (400-900 px, one face each), {os.cpu_count()} cores; "
        f"the three one-process rows give {'the same' if same else 'DIFFERENT'} answers:\n"
    )
    print("| engine | seconds | pictures/s | vs one process | vs one process, one thread | of it, Ray's start |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, seconds in (
        (f"one process (Recognizer.predict: {os.cpu_count()} threads decoding and detecting)", single_s),
        ("one process without the pool (workers=1, OpenCV and ONNX Runtime on every core)", unpooled_s),
        ("one process, one thread", one_thread_s),
    ):
        print(
            f"| {label} | {seconds:.1f} | {pictures / seconds:.1f} | {single_s / seconds:.2f}x | {one_thread_s / seconds:.2f}x | - |"
        )
    ray_s = {}
    for workers in worker_counts:
        summary = on_ray(folder, workers, scratch)
        ray_s[workers] = summary.seconds
        print(
            f"| Ray Data, {workers} worker(s) | {summary.seconds:.1f} | {pictures / summary.seconds:.1f} | "
            f"{single_s / summary.seconds:.2f}x | {one_thread_s / summary.seconds:.2f}x | {summary.startup_seconds:.1f} s |"
        )
    fixed = on_ray(small, 2, scratch)
    print(
        f"\nRay's fixed cost: {fixed.seconds:.1f} s for 8 pictures with 2 workers ({fixed.startup_seconds:.1f} s of it ray.init)."
    )
    # Once started, actors go at the job's rate less its fixed cost (taken as the 8-picture call's, for both pool sizes).
    running = {workers: (pictures - 8) / (seconds - fixed.seconds) for workers, seconds in ray_s.items()}
    print(
        "Without it, once the actors run: "
        + ", ".join(
            f"{workers} worker(s) {rate:.1f} pictures/s ({rate * single_s / pictures:.2f}x one process, "
            f"{rate * one_thread_s / pictures:.2f}x one thread)"
            for workers, rate in running.items()
        )
        + "."
    )


def training_figures(scratch: Path) -> None:
    """The data-parallel training rows (see the module's docstring)."""
    from emolens.data.synth import synthesize_dataset

    data = synthesize_dataset(scratch / "synth", train_per_class=100, test_per_class=5, seed=0)
    steps = -(-(7 * 100 - 70) // 64)  # 10% held out for validation
    print("\nData-parallel training, mini_resnet, batch 64, second epoch, JAX on one CPU split in 2 virtual devices:\n")
    print("| devices | seconds an epoch | steps/s |")
    print("| ---: | ---: | ---: |")
    for devices in (1, 2):
        seconds = training_seconds(data, scratch, devices)
        print(f"| {devices} | {seconds:.1f} | {steps / seconds:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--photos", type=int, default=2000, help="pictures for the batch prediction rows (0: skip them)"
    )
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated Ray worker counts (on a machine of 16 cores: 1,2,4,8,16)"
    )
    parser.add_argument("--no-train", action="store_true", help="skip the data-parallel training rows")
    parser.add_argument("--driver", default="", help="comma-separated input counts for the Ray driver's memory figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        scratch = Path(name)
        if args.photos:
            batch_figures(scratch, args.photos, [int(count) for count in args.workers.split(",")])
        if args.driver:
            driver_figures(scratch, [int(count) for count in args.driver.split(",")])
        if not args.no_train:
            training_figures(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
