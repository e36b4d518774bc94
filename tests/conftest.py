"""Shared fixtures: small datasets built in each test's own folder, and isolation from the user's cache."""

from __future__ import annotations

import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

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
