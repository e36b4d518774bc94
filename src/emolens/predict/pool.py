"""Pictures decoded, their faces found and cropped on a pool of threads, handed on in input order.

Decoding (Pillow, OpenCV) and detection (OpenCV's DNN and cascades) release the GIL, so threads use every core
in one process while the classifier runs batches on the caller's thread. Each thread keeps its own detector:
OpenCV's detectors hold per-call state and are not safe to share. While a pool runs, OpenCV's own threads are
set to one (a process-wide setting, restored when the last pool stops): its parallel regions are process-wide,
and splitting each picture across cores as well made the pool 15-20% slower (bench/scale.py).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from emolens.errors import EmolensError
from emolens.predict.detectors import Detections, DetectorConfig, FaceDetector, crop_faces
from emolens.predict.inputs import PendingPicture
from emolens.predict.picture import Picture

# Pictures in flight per thread: enough to keep every thread busy while the caller classifies a batch. Reading
# ahead also stops once the decoded pictures waiting hold AHEAD_PIXELS (as a batch ends at the Recognizer's
# BATCH_PIXELS), so a folder of 64-megapixel photos keeps one waiting, not two per thread; decoding itself is
# bounded by the decode budget (emolens.data.decode.DECODE_BUDGET).
AHEAD_PER_WORKER = 2
AHEAD_PIXELS = 16_000_000


@dataclass(frozen=True)
class Detected:
    """A picture with the faces found in it, their crops for the classifier and the detector's time; an
    unreadable picture has no detections."""

    picture: Picture
    found: Detections | None = None
    crops: np.ndarray | None = None
    detect_ms: float = 0.0

    @property
    def pixels(self) -> int:
        return 0 if self.picture.gray is None else self.picture.gray.size


def _waiting_pixels(pending: Iterable[Future[Detected]]) -> int:
    """Pixels of the pictures in `pending` that are done, waiting to be handed on."""
    return sum(
        future.result().pixels
        for future in pending
        if future.done() and not future.cancelled() and future.exception() is None
    )


_opencv_lock = threading.Lock()
_opencv_pools = 0
_opencv_threads = 0


@contextmanager
def _opencv_on_one_thread() -> Iterator[None]:
    global _opencv_pools, _opencv_threads
    with _opencv_lock:
        if _opencv_pools == 0:
            _opencv_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _opencv_pools += 1
    try:
        yield
    finally:
        with _opencv_lock:
            _opencv_pools -= 1
            if _opencv_pools == 0:
                cv2.setNumThreads(_opencv_threads)


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class DetectionPool:
    """Decodes, detects and crops pictures on `workers` threads (1: on the caller's thread, no pool).

    Examples:
        >>> pool = DetectionPool(DetectorConfig(), workers=2, crop_size=48)
        >>> [len(d.found) for d in pool.detected([Picture("blank", "blank", np.zeros((64, 64), np.uint8), None)])]
        [0]
        >>> pool.close()
    """

    def __init__(self, config: DetectorConfig, *, workers: int, crop_size: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise EmolensError(f"workers must be a whole number of threads, 1 or more, not {workers!r}.")
        self.config = config
        self.workers = workers
        self.crop_size = crop_size
        self.detector = config.build()  # the caller's thread's
        self._local = threading.local()  # each pool thread's
        self._executor: ThreadPoolExecutor | None = None

    def detected(self, items: Iterable[Picture | PendingPicture]) -> Iterator[Detected]:
        """Each item decoded (if pending), detected and cropped, in the order given. One picture alone, and a
        camera's frames, are done on the caller's thread, where OpenCV splits each over the cores itself (no
        frame is read ahead of its result); a live picture after others waits for those before it."""
        items = iter(items)
        first = next(items, None)
        if first is None:
            return
        if self.workers > 1 and not (isinstance(first, Picture) and first.live):
            second = next(items, None)
            if second is not None:
                yield from self._pooled(itertools.chain((first, second), items))
                return
        yield from (self._detect(item, self.detector) for item in itertools.chain((first,), items))

    def _pooled(self, items: Iterator[Picture | PendingPicture]) -> Iterator[Detected]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="emolens-detect")
        pending: deque[Future[Detected]] = deque()
        with _opencv_on_one_thread():
            try:
                for item in items:
                    if isinstance(item, Picture) and item.live:
                        while pending:
                            yield pending.popleft().result()
                        yield self._detect(item, self.detector)
                        continue
                    pending.append(self._executor.submit(self._detect_on_pool, item))
                    while pending and (
                        len(pending) >= AHEAD_PER_WORKER * self.workers or _waiting_pixels(pending) >= AHEAD_PIXELS
                    ):
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # the caller stopped early or an error is on its way: drop what has not started
                for future in pending:
                    future.cancel()

    def close(self) -> None:
        """Stops the threads (a later `detected` starts new ones)."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def _detect_on_pool(self, item: Picture | PendingPicture) -> Detected:
        if not hasattr(self._local, "detector"):
            self._local.detector = self.config.build()
        return self._detect(item, self._local.detector)

    def _detect(self, item: Picture | PendingPicture, detector: FaceDetector) -> Detected:
        picture = item if isinstance(item, Picture) else item()
        if picture.gray is None:  # unreadable: its error says why
            return Detected(picture)
        began = time.perf_counter()
        found = detector.detect(picture.gray)
        detect_ms = (time.perf_counter() - began) * 1000
        return Detected(
            picture, found, crop_faces(picture.gray, found.boxes, detector.framing, self.crop_size), detect_ms
        )


__all__ = ["Detected", "DetectionPool", "default_workers"]
