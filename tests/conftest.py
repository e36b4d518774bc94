"""Shared fixtures: small datasets built in each test's own folder, isolation from the user's cache, and the
photos and untrained classifier of the predict/, models/ and export tests."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from emolens.constants import FER2013_CLASSES

if TYPE_CHECKING:
    from emolens.predict import Recognizer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]  # the checkout: tests/ lives in it, ../shared beside it
SHARED = ROOT.parent / "shared"
ASTRONAUT = ROOT / "samples" / "astronaut.png"
CLASSES = ("angry", "happy", "sad")


def png_bytes(pixels: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A 1 x 1 PNG whose header claims width x height (with a valid header CRC): a decompression bomb."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def class_image(label: int, index: int, size: int = 48) -> np.ndarray:
    """A distinct, recognisable image per (class, index): a flat gray level per class plus a marked pixel."""
    pixels = np.full((size, size), 40 + 80 * label, np.uint8)
    pixels[index % size, (index // size) % size] = 255
    return pixels


def write_tree(root: Path, splits: dict[str, int], classes: tuple[str, ...] = CLASSES) -> Path:
    """Writes root/<split>/<class>/<i>.png with `splits[split]` images per class."""
    for split, count in splits.items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                (folder / f"{i:03d}.png").write_bytes(png_bytes(class_image(label, i)))
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("EMOLENS_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}): the shared FER2013 files are only in the development checkout")
    return SHARED


# --- headless Chromium, for the web page and annotated videos ------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 10) -> Path:
    """A short YUV4MPEG2 video of one still picture: Chromium's fake webcam plays such files."""
    height, width = rgb.shape[:2]
    ycbcr = np.asarray(Image.fromarray(rgb).convert("YCbCr"))
    y = ycbcr[..., 0]
    cb, cr = (ycbcr[0::2, 0::2, c] for c in (1, 2))  # 4:2:0
    with open(path, "wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            file.write(b"FRAME\n" + y.tobytes() + cb.tobytes() + cr.tobytes())
    return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    video = write_y4m(
        tmp_path_factory.mktemp("camera") / "astronaut.y4m", np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    )
    args = [
        "--no-sandbox",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


# --- emolens in a fresh interpreter, to see what it imports -----------------------------------------------


class FreshRun(NamedTuple):
    returncode: int
    backend_modules: list[str]  # the TensorFlow and Keras modules the command imported
    stdout: str
    stderr: str


def run_in_fresh_python(argv: list[str], cwd: Path = ROOT) -> FreshRun:
    """`emolens <argv>` through `emolens.cli.main` in a new interpreter (nothing imported yet), so a test can
    check which backend modules the command itself loaded; the list is the last line the child writes."""
    code = (
        "import sys; from emolens.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as stop:\n    code = stop.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
        "sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300, cwd=cwd)
    *output, modules = done.stdout.rstrip("\n").split("\n")
    return FreshRun(done.returncode, ast.literal_eval(modules), "\n".join(output), done.stderr)


# --- emolens serve in a subprocess ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(log: Path, *args: str, host: str = "127.0.0.1") -> tuple[subprocess.Popen, str]:
    """`emolens serve` in a subprocess on a free port, its output in `log`; returns once /v1/health answers."""
    port = free_port()
    command = [sys.executable, "-m", "emolens", "serve", "--host", host, "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"emolens serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("emolens serve did not answer within 60 s")


# --- photos of pasted faces, an untrained classifier: for predict/, models/ and test_export.py ---------------
#
# Test photos are built from the committed public-domain portrait samples/astronaut.png: its face is pasted
# three times, at known squares and sizes, onto a flat canvas (the drawn faces of emolens.data.synth are too
# cartoonish for a detector). Detected boxes must lie inside their squares and be centred on them. Group photos
# paste it turned by up to 35 degrees (Haar misses those); photos without people are blurred noise, a texture in
# which Haar finds faces and YuNet, the bundled default, does not.
#
# The classifier is an untrained mini_resnet (seeded, never trained) saved with a full emolens card and
# exported to ONNX once per session: the tests that use it check plumbing, shapes and agreement, not accuracy.

CANVAS_SHAPE = (480, 800)  # height, width
SQUARES = ((40, 40, 140), (300, 60, 100), (560, 200, 180))  # x, y, side of each pasted face, left to right
FACE = (slice(47, 187), slice(153, 293))  # the astronaut's face: a 140 x 140 square of the portrait
BACKGROUND_RGB = (200, 90, 30)  # for colour canvases: far from gray, so RGB/BGR mix-ups change the gray levels
FACE_COLUMNS = ["source", "frame", "time", "face", "track_id", "x", "y", "w", "h", "score", "emotion", "confidence"]
CSV_HEADER = [*FACE_COLUMNS, *FER2013_CLASSES]


def astronaut_rgb() -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))


def astronaut_gray() -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert("L"))


def gray_canvas(level: int = 128, squares=SQUARES) -> np.ndarray:
    """The astronaut's gray face pasted at each square onto a flat gray canvas."""
    face = astronaut_gray()[FACE]
    canvas = np.full(CANVAS_SHAPE, level, np.uint8)
    for x, y, side in squares:
        canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return canvas


def color_canvas() -> np.ndarray:
    """The astronaut's colour face pasted at each square onto an orange canvas, as RGB."""
    face = astronaut_rgb()[FACE]
    canvas = np.empty((*CANVAS_SHAPE, 3), np.uint8)
    canvas[:] = BACKGROUND_RGB
    for x, y, side in SQUARES:
        canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return canvas


def turned_face(angle: float, side: int) -> np.ndarray:
    """The astronaut's head and shoulders, gray, turned by `angle` degrees, as a side x side square."""
    portrait = astronaut_gray()[20:230, 120:330]
    turn = cv2.getRotationMatrix2D((105, 105), angle, 1.0)
    return cv2.resize(
        cv2.warpAffine(portrait, turn, (210, 210), borderMode=cv2.BORDER_REPLICATE),
        (side, side),
        interpolation=cv2.INTER_AREA,
    )


# A group photo: ten faces in two rows, some turned as people turn their heads.
GROUP_ANGLES = (0, 25, -30, 10, 35, -25, 0, 30, -35, 15)


def group_photo(side: int = 150, angles=GROUP_ANGLES) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A gray group photo of len(angles) faces, five a row, and the square (x, y, side) of each."""
    columns = 5
    rows = -(-len(angles) // columns)
    canvas = np.full((rows * (side + 40) + 40, columns * (side + 20) + 20), 128, np.uint8)
    squares = []
    for index, angle in enumerate(angles):
        x, y = 20 + (index % columns) * (side + 20), 40 + (index // columns) * (side + 40)
        canvas[y : y + side, x : x + side] = turned_face(angle, side)
        squares.append((x, y, side))
    return canvas, squares


def textures(count: int = 4) -> list[np.ndarray]:
    """Photos without people: blurred noise, as of foliage or fabric, on which Haar finds "faces"."""
    pictures = []
    for seed in range(count):
        noise = np.random.default_rng(seed).integers(0, 256, (600, 800)).astype(np.uint8)
        pictures.append(cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 4), None, 0, 255, cv2.NORM_MINMAX))
    return pictures


def save(pixels: np.ndarray, path: Path, **options) -> Path:
    Image.fromarray(pixels).save(path, **options)
    return path


def assert_boxes_in_squares(boxes, squares=SQUARES) -> None:
    """Exactly one box per square, left to right, each inside its square and centred on it within 15% of its side."""
    boxes = [tuple(int(v) for v in box) for box in boxes]
    assert len(boxes) == len(squares), f"expected {len(squares)} faces, found {boxes}"
    for (x, y, w, h), (sx, sy, side) in zip(boxes, squares, strict=True):
        assert w > 0 and h > 0
        assert sx <= x and sy <= y and x + w <= sx + side and y + h <= sy + side, (
            f"box {(x, y, w, h)} leaves square {(sx, sy, side)}"
        )
        assert abs(x + w / 2 - (sx + side / 2)) <= 0.15 * side, (
            f"box {(x, y, w, h)} off-centre in square {(sx, sy, side)}"
        )
        assert abs(y + h / 2 - (sy + side / 2)) <= 0.15 * side, (
            f"box {(x, y, w, h)} off-centre in square {(sx, sy, side)}"
        )


# A min_face between the boxes each detector draws on the two larger pasted faces (YuNet's are narrower).
MIN_FACE_FOR_THE_LARGEST = {"yunet": 105, "haar": 120}


# --- the JSON that `emolens predict --json` documents -----------------------------------------------------------

# One object per image (or analysed video frame). Video frames add "frame" (int) and "time" (float, seconds).
# speed: milliseconds per stage.
RESULT_SCHEMA = {"source": str, "width": int, "height": int, "faces": list, "speed": dict}
VIDEO_SCHEMA = {"frame": int, "time": float}
# Each face: box [x, y, w, h] in the picture's pixels; score, the detector's (null for Haar); landmarks, five
# [x, y] (null for Haar); emotion, one of the class names; confidence, the top probability; probabilities, every
# class name to its probability (they sum to 1); track_id, an int in videos (null for photos).
FACE_SCHEMA = {"box": list, "emotion": str, "confidence": float, "probabilities": dict}
NULLABLE_FACE_SCHEMA = {"score": float, "landmarks": list, "track_id": int}


def _is(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def check_result(obj: dict, *, video: bool = False) -> None:
    schema = {**RESULT_SCHEMA, **(VIDEO_SCHEMA if video else {})}
    assert set(obj) == set(schema), f"keys {sorted(obj)} != {sorted(schema)}"
    for key, kind in schema.items():
        assert _is(obj[key], kind), f"{key}={obj[key]!r} is not {kind.__name__}"
    assert set(obj["speed"]) == {"decode", "detect", "classify"} and all(
        _is(v, float) and v >= 0 for v in obj["speed"].values()
    )
    for face in obj["faces"]:
        assert set(face) == set(FACE_SCHEMA) | set(NULLABLE_FACE_SCHEMA), f"face keys {sorted(face)}"
        for key, kind in FACE_SCHEMA.items():
            assert _is(face[key], kind), f"face {key}={face[key]!r} is not {kind.__name__}"
        for key, kind in NULLABLE_FACE_SCHEMA.items():
            assert face[key] is None or _is(face[key], kind), (
                f"face {key}={face[key]!r} is neither null nor {kind.__name__}"
            )
        assert (face["track_id"] is not None) == video
        if face["landmarks"] is not None:
            assert len(face["landmarks"]) == 5 and all(len(point) == 2 for point in face["landmarks"])
        box = face["box"]
        assert len(box) == 4 and all(_is(v, int) for v in box), box
        x, y, w, h = box
        assert w > 0 and h > 0 and x >= 0 and x + w <= obj["width"] and y >= 0 and y + h <= obj["height"], box
        assert face["emotion"] in FER2013_CLASSES
        probabilities = face["probabilities"]
        assert sorted(probabilities) == sorted(FER2013_CLASSES)
        assert all(_is(p, float) and 0.0 <= p <= 1.0 for p in probabilities.values())
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert 0.0 <= face["confidence"] <= 1.0
        assert face["confidence"] == max(probabilities.values()) == probabilities[face["emotion"]]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- the classifier, the recognizer and the photos (once per session); faces.csv; a test video ---------------


@pytest.fixture(scope="session")
def keras_model(tmp_path_factory) -> Path:
    """An untrained, seeded mini_resnet with an emolens card (no training)."""
    import keras

    from emolens.models import build_model
    from emolens.models.saving import save_model

    keras.utils.set_random_seed(0)
    model = build_model("mini_resnet")
    model(np.zeros((1, 48, 48, 1), np.float32))
    card = {
        "model": "mini_resnet",
        "class_names": list(FER2013_CLASSES),
        "input_shape": [48, 48, 1],
        "train_sharpness": 45.0,
    }
    return save_model(model, tmp_path_factory.mktemp("model") / "mini.keras", card)


@pytest.fixture(scope="session")
def onnx_model(keras_model, tmp_path_factory) -> Path:
    from emolens.export import export_model

    return export_model(keras_model, tmp_path_factory.mktemp("onnx") / "mini.onnx", format="onnx")


@pytest.fixture(scope="session")
def recognizer(onnx_model) -> Recognizer:
    from emolens.predict import Recognizer

    return Recognizer(onnx_model)


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Files of the three-face canvas in several encodings, and a blank picture."""
    folder = tmp_path_factory.mktemp("photos")
    gray = gray_canvas()
    return {
        "png": save(gray, folder / "faces.png"),
        "jpg": save(color_canvas(), folder / "colour.jpg", quality=95),
        "blank": save(np.full(CANVAS_SHAPE, 128, np.uint8), folder / "blank.png"),
        "png16": save(gray.astype(np.uint16) * 257, folder / "faces16.png"),
        "cmyk": _save_cmyk(color_canvas(), folder / "cmyk.jpg"),
    }


def _save_cmyk(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb).convert("CMYK").save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    return path


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    return rows[0], [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _moving_faces_video(path: Path, frames: int = 15, fps: float = 10.0) -> Path:
    """Two faces, one still and one moving right 8 px a frame, as an MPEG-4 file OpenCV writes."""
    face = cv2.resize(astronaut_gray()[FACE], (120, 120), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (CANVAS_SHAPE[1], CANVAS_SHAPE[0]))
    for index in range(frames):
        canvas = np.full(CANVAS_SHAPE, 128, np.uint8)
        canvas[60:180, 40 + 8 * index : 160 + 8 * index] = face
        canvas[300:420, 600:720] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def argv(command: str, **paths: object) -> list[str]:
    """An `emolens` command line as `main` takes it: the words of `command`, each `{name}` replaced by the path
    given as `name` (whole, spaces and all), e.g. argv("train {data} --epochs 1 --out {run}", data=d, run=r)."""
    values = {name: str(value) for name, value in paths.items()}
    return [word.format(**values) for word in command.split()]
