"""Video files and cameras as a stream of decoded frames (`Picture`s), read with OpenCV's FFmpeg backend."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import cv2

from emolens._native import native_stderr_silenced
from emolens.data.decode import MAX_PIXELS, ImageTooLarge, UndecodableImage
from emolens.data.preprocess import gray_from_rgb
from emolens.errors import EmolensError
from emolens.predict.picture import Picture

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_video(source: str | os.PathLike | int) -> cv2.VideoCapture:
    """An opened capture for a video file or a camera index.

    Raises:
        EmolensError: a camera that cannot be opened.
        UndecodableImage: a video file that cannot be opened.
    """
    # OpenCV and FFmpeg print their own warnings for a missing camera or a broken file; ours says it in one line.
    with native_stderr_silenced():
        capture = cv2.VideoCapture(source) if isinstance(source, int) else cv2.VideoCapture(str(source))
    if not capture.isOpened():
        capture.release()
        if isinstance(source, int):
            raise EmolensError(
                f"no camera {source} could be opened: check that one is connected and not in use, or choose another camera number."
            )
        raise UndecodableImage("not a readable video")
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width * height > MAX_PIXELS:
        # The cap photos have: FFmpeg decodes whatever a file holds (a huge PNG named .mp4 is a one-frame video).
        capture.release()
        raise ImageTooLarge(f"video frames are {width}x{height}, above {MAX_PIXELS:,} pixels")
    return capture


def stated_frame_count(path: str | os.PathLike) -> int:
    """The frames a video file's container says it holds (0 if it cannot be opened)."""
    with native_stderr_silenced():
        capture = cv2.VideoCapture(str(path))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    return frames


NO_FRAMES = "no frame of the video could be decoded"


def frame_rate(capture: cv2.VideoCapture) -> float:
    """The capture's frames per second; 30 when it reports none (cameras and some containers report 0)."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    return fps if 0 < fps < 1000 else 30.0


def _frame_time(capture: cv2.VideoCapture, index: int, fps: float) -> float:
    """The seconds at which the frame just grabbed is shown: its timestamp, which variable-frame-rate videos
    (phones) need (index / fps put frame 4 of one at 1.65 s instead of 2.0 s); index / fps where the container
    gives none."""
    milliseconds = capture.get(cv2.CAP_PROP_POS_MSEC)
    return milliseconds / 1000 if milliseconds > 0 or index == 0 else index / fps


def video_frames(source: str | os.PathLike | int, name: str, every: int) -> Iterator[Picture]:
    """Every `every`-th frame of a video file, or every frame of a camera until it ends or Ctrl-C stops it."""
    live = isinstance(source, int)
    try:
        capture = open_video(source)
    except UndecodableImage as error:
        yield Picture(str(source), name, None, None, error=str(error))
        return
    try:
        fps = frame_rate(capture)
        started = time.monotonic()
        index = 0
        began = time.perf_counter()
        while capture.grab():
            if live or index % every == 0:
                ok, bgr = capture.retrieve()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                gray = gray_from_rgb(rgb)
                seconds = time.monotonic() - started if live else _frame_time(capture, index, fps)
                decode_ms = (time.perf_counter() - began) * 1000
                yield Picture(
                    str(source),
                    name,
                    gray,
                    rgb,
                    decode_ms,
                    frame=index,
                    time=round(seconds, 3),
                    fps=fps if live else fps / every,
                    live=live,
                )
            index += 1
            began = time.perf_counter()
        if index == 0 and not live:  # a file that opened but holds no decodable frame: say so in its row
            yield Picture(str(source), name, None, None, error=NO_FRAMES)
    except KeyboardInterrupt:
        if not live:
            raise
        # Ctrl-C ends a camera session normally: what was analysed is kept and written.
    finally:
        capture.release()
