"""The thread pool behind `Recognizer.predict`: input order kept, the same answers as one thread, errors in
their place, reading ahead bounded, OpenCV's thread setting restored."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from emolens.cli import main
from emolens.data.decode import UndecodableImage
from emolens.errors import EmolensError
from emolens.predict import DetectorConfig, Recognizer
from emolens.predict.detectors import FaceDetector, Framing, register_detector, unregister_detector
from emolens.predict.picture import Picture
from emolens.predict.pool import AHEAD_PER_WORKER, Detected, DetectionPool, _waiting_pixels

ASTRONAUT = ROOT / "samples" / "astronaut.png"
# Pictures of the "paired" detector: picture 2k's detection waits until picture 2k+1's is done, so with two
# threads the later picture of each pair always finishes first.
finished: dict[int, threading.Event] = {}
waits_met: list[bool] = []
seen_on: list[tuple[str, int]] = []  # each detection's thread and OpenCV's thread setting then


@pytest.fixture
def paired_detector():
    @register_detector(
        "paired", framing=Framing(scale=1.0, dy=0.0), description="finishes each pair's second picture first"
    )
    class Paired(FaceDetector):
        def _detect(self, gray, min_face):
            number = int(gray[0, 0])
            seen_on.append((threading.current_thread().name, cv2.getNumThreads()))
            if number == 99:
                raise RuntimeError("the detector broke on picture 99")
            if number % 2 == 0:
                waits_met.append(finished[number + 1].wait(timeout=20))
            finished[number].set()
            return np.array([[0, 0, gray.shape[1], gray.shape[0]]]), None, None

    finished.clear()
    finished.update({number: threading.Event() for number in range(100)})
    waits_met.clear()
    seen_on.clear()
    yield DetectorConfig("paired")
    unregister_detector("paired")


def numbered(number: int, *, live: bool = False) -> Picture:
    return Picture(f"picture{number}", f"picture{number}", np.full((40, 40), number, np.uint8), None, live=live)


def test_results_keep_the_input_order_when_later_pictures_finish_first(paired_detector):
    pool = DetectionPool(paired_detector, workers=2, crop_size=48)
    names = [detected.picture.name for detected in pool.detected(numbered(n) for n in range(8))]
    pool.close()
    assert names == [f"picture{n}" for n in range(8)]
    assert waits_met == [True] * 4  # every even picture ran while its odd neighbour did: the threads overlapped


def test_threads_give_the_answers_one_thread_gives_errors_in_their_place(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    portrait = Image.open(ASTRONAUT).convert("RGB")
    for index, side in enumerate((512, 300, 700, 420, 260)):
        portrait.resize((side, side)).save(folder / f"{index}a.jpg")
    (folder / "2b.png").write_bytes(b"not an image")
    one, three = Recognizer(workers=1), Recognizer(workers=3)
    expected = [{**r.to_dict(), "speed": None} for r in one.predict(folder, errors="keep")]
    got = [{**r.to_dict(), "speed": None} for r in three.predict(folder, errors="keep")]
    assert got == expected
    assert [r["source"].rsplit("/", 1)[-1] for r in got] == ["0a.jpg", "1a.jpg", "2a.jpg", "2b.png", "3a.jpg", "4a.jpg"]
    assert "error" in got[3] and all(len(r["faces"]) == 1 for i, r in enumerate(got) if i != 3)
    stream = three.predict(folder, stream=True)
    assert [next(stream).source.rsplit("/", 1)[-1] for _ in range(3)] == ["0a.jpg", "1a.jpg", "2a.jpg"]
    with pytest.raises(UndecodableImage, match=r"2b\.png"):
        next(stream)


def test_a_detector_error_reaches_the_caller_and_opencv_threads_come_back(paired_detector):
    threads = cv2.getNumThreads()
    pool = DetectionPool(paired_detector, workers=2, crop_size=48)
    pictures = [numbered(1), numbered(3), numbered(99), *(numbered(n) for n in range(5, 40, 2))]
    stream = pool.detected(pictures)
    assert next(stream).picture.name == "picture1"
    assert cv2.getNumThreads() == 1  # while the pool runs, OpenCV does not split each picture too
    assert next(stream).picture.name == "picture3"
    with pytest.raises(RuntimeError, match="picture 99"):
        next(stream)
    assert cv2.getNumThreads() == threads
    assert [d.picture.name for d in pool.detected([numbered(5), numbered(7)])] == ["picture5", "picture7"]
    early = pool.detected(numbered(n) for n in range(1, 40, 2))
    next(early)
    early.close()  # a caller that stops early
    assert cv2.getNumThreads() == threads
    pool.close()


def test_one_picture_alone_stays_on_the_callers_thread_with_opencvs_own_threads(paired_detector):
    threads = cv2.getNumThreads()
    pool = DetectionPool(paired_detector, workers=2, crop_size=48)
    assert [d.picture.name for d in pool.detected([numbered(1)])] == ["picture1"]
    assert seen_on == [(threading.current_thread().name, threads)]
    seen_on.clear()
    list(pool.detected([numbered(1), numbered(3)]))
    assert all(name.startswith("emolens-detect") and opencv == 1 for name, opencv in seen_on) and len(seen_on) == 2
    pool.close()


@pytest.mark.parametrize("live", [False, True])
def test_reading_ahead_is_bounded_and_camera_frames_are_not_read_ahead(paired_detector, live):
    pulled = []

    def pictures():
        for number in range(1, 60, 2):
            pulled.append(number)
            yield numbered(number, live=live)

    pool = DetectionPool(paired_detector, workers=2, crop_size=48)
    for done, _ in enumerate(pool.detected(pictures()), start=1):
        assert len(pulled) - done < (1 if live else AHEAD_PER_WORKER * 2)
    pool.close()
    assert len(pulled) == 30


def test_reading_ahead_counts_the_pixels_of_decoded_pictures_waiting():
    from concurrent.futures import Future

    done, failed, running, cancelled = Future(), Future(), Future(), Future()
    done.set_result(Detected(numbered(1)))  # 40 x 40
    failed.set_exception(RuntimeError("broken"))
    cancelled.cancel()
    unreadable = Future()
    unreadable.set_result(Detected(Picture("x", "x", None, None, error="not read")))
    assert _waiting_pixels([done, failed, running, cancelled, unreadable, done]) == 2 * 1600


def test_workers_must_be_a_positive_whole_number():
    for workers in (0, -1, 1.5, True):
        with pytest.raises(EmolensError, match="workers must be"):
            DetectionPool(DetectorConfig(), workers=workers, crop_size=48)


def test_predict_takes_workers_on_the_command_line(tmp_path, capsys):
    assert main(["predict", str(ASTRONAUT), str(ASTRONAUT), "--workers", "2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(Path(line["source"]).name, len(line["faces"])) for line in lines] == [("astronaut.png", 1)] * 2
