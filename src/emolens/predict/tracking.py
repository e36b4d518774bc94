"""Following faces from frame to frame: ByteTrack (from the `supervision` package) gives each face a track id,
and an optional window averages each track's probabilities so labels stop flickering. A cut to another shot
ends every track: faces after it get new ids, never the ids of the people before it."""

from __future__ import annotations

import warnings
from collections import defaultdict, deque
from dataclasses import replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from emolens.predict.results import Face

if TYPE_CHECKING:  # supervision is imported once a video or camera is tracked
    import supervision as sv

# A shot change, from two consecutive analysed frames shrunk to 32x32: their mean absolute difference (0-255).
# Faces moving, talking or turning change such a thumbnail by little (under 1 level between frames of the
# generated clips in tests/predict), a cut to another shot by tens (105 at their cut). 30 leaves room for handheld
# shake and lighting changes, which no real footage here could measure; a missed cut only keeps today's tracks.
SHOT_CHANGE_DIFFERENCE = 30.0
_THUMBNAIL = (32, 32)


def shot_thumbnail(gray: np.ndarray) -> np.ndarray:
    """A frame reduced to what shot-change detection compares: 32x32 gray, as float32."""
    return cv2.resize(gray, _THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)


def is_shot_change(previous: np.ndarray, current: np.ndarray) -> bool:
    """Whether two consecutive frames' thumbnails (`shot_thumbnail`) belong to different shots."""
    return float(np.mean(np.abs(previous - current))) > SHOT_CHANGE_DIFFERENCE


class FaceTracker:
    """Track ids (and, with `smooth` > 1, smoothed emotions) for the faces of one video or camera stream.

    Args:
        fps: analysed frames per second; ByteTrack sizes how long it keeps a lost face by it.
        class_names: the model's classes.
        smooth: average each face's probabilities over its last `smooth` analysed frames; 0 or 1: no averaging.
    """

    def __init__(self, fps: float, class_names: list[str], smooth: int = 0) -> None:
        import supervision as sv  # only videos and cameras need it

        self._sv = sv
        self.frame_rate = max(1, round(fps))
        self.tracker = self._new_tracker()
        # Ids go on rising across shots: a new tracker counts from 1 again, so its ids are shifted past the last.
        self.first_id_of_shot = 0
        self.largest_id = 0
        self.previous: np.ndarray | None = None
        self.class_names = class_names
        self.smooth = smooth
        self.history: dict[int, deque] = defaultdict(lambda: deque(maxlen=max(1, smooth)))

    def _new_tracker(self) -> sv.ByteTrack:
        with warnings.catch_warnings():
            # supervision 0.28+ deprecates its ByteTrack for the `trackers` package, which requires
            # opencv-python 5 (no Haar cascades) next to our opencv-python-headless 4: pinned <0.31 (pyproject).
            warnings.simplefilter("ignore", FutureWarning)
            return self._sv.ByteTrack(frame_rate=self.frame_rate)

    def update(self, faces: list[Face], gray: np.ndarray | None = None) -> list[Face]:
        """The same faces, in the same order, each with its track id (None for a face ByteTrack did not keep).

        With the frame (`gray`), a cut to another shot ends every track before this frame's faces are matched.
        """
        if gray is not None:
            thumbnail = shot_thumbnail(gray)
            if self.previous is not None and is_shot_change(self.previous, thumbnail):
                self.tracker = self._new_tracker()  # ByteTrack activates every face of its first frame at once
                self.first_id_of_shot = self.largest_id
            self.previous = thumbnail
        boxes = np.array([face.box for face in faces], dtype=np.float64).reshape(-1, 4)
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        scores = np.array([1.0 if face.score is None else face.score for face in faces], dtype=np.float64)
        detections = self._sv.Detections(
            xyxy=xyxy,
            confidence=scores,
            class_id=np.zeros(len(faces), dtype=int),
            data={"index": np.arange(len(faces))},
        )
        # Called on empty frames too, so lost faces age; supervision then returns detections with no `index`
        # data at all (0.30.x), and a frame whose faces ByteTrack all dropped holds no tracks.
        tracked = self.tracker.update_with_detections(detections)
        indices: np.ndarray | list = np.zeros(0, dtype=int)  # supervision's data holds arrays or lists
        track_ids: np.ndarray = np.zeros(0, dtype=int)
        if len(tracked) and tracked.tracker_id is not None:  # ByteTrack's always has ids (typed as optional)
            indices, track_ids = tracked.data.get("index", indices), tracked.tracker_id
        ids = {int(index): self.first_id_of_shot + int(track) for index, track in zip(indices, track_ids, strict=True)}
        self.largest_id = max([self.largest_id, *ids.values()])
        return [self._smoothed(replace(face, track_id=ids.get(i))) for i, face in enumerate(faces)]

    def _smoothed(self, face: Face) -> Face:
        if self.smooth <= 1 or face.track_id is None:
            return face
        window = self.history[face.track_id]
        window.append([face.probabilities[name] for name in self.class_names])
        mean = np.mean(window, axis=0)
        return Face.from_probabilities(
            face.box,
            mean,
            self.class_names,
            score=face.score,
            landmarks=face.landmarks,
            track_id=face.track_id,
            explanation=face.explanation,
            crop=face.crop,
        )
