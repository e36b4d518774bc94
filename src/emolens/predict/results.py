"""What prediction gives back: a `Result` per picture (or video frame), holding its `Face`s.

A Result can draw itself (`plot`), write itself (`save`) and serialise itself (`to_dict`, the object that
`emolens predict --json` prints and serve returns).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emolens._io import write_bytes
from emolens.errors import EmolensError
from emolens.predict.annotate import annotate, heat_overlay

# Per-stage timings a Result carries, in milliseconds ("explain" only when explanations were asked for).
STAGES = ("decode", "detect", "classify", "explain")
# The side an explanation's own picture is drawn at: the 48-pixel crop enlarged four times.
EXPLANATION_SIDE = 192


@dataclass(frozen=True)
class Explanation:
    """Why a face got its emotion: a Grad-CAM heat map over the crop the classifier saw (see emolens.predict.explain).

    Attributes:
        heatmap: (size, size) float32 in [0, 1]; high where the face argued for its emotion.
        crop: (size, size) uint8, the face as the classifier saw it.
        square: the crop's left x, top y and side in the picture's pixels.

    Examples:
        >>> from emolens import Recognizer
        >>> face = Recognizer(explain=True).predict("samples/astronaut.png")[0].faces[0]
        >>> face.explanation.heatmap.shape, face.explanation.plot().shape
        ((48, 48), (192, 192, 3))
    """

    heatmap: np.ndarray = field(repr=False)
    crop: np.ndarray = field(repr=False)
    square: tuple[int, int, int]

    def plot(self, side: int = EXPLANATION_SIDE) -> np.ndarray:
        """The crop enlarged to `side` pixels with the heat map over it, RGB uint8."""
        face = cv2.cvtColor(cv2.resize(self.crop, (side, side), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
        return heat_overlay(face, cv2.resize(self.heatmap, (side, side), interpolation=cv2.INTER_LINEAR))


@dataclass(frozen=True)
class Face:
    """One face.

    Attributes:
        box: (x, y, w, h) in the picture's pixels.
        emotion: the most probable class; confidence is its probability.
        probabilities: every class name to its probability (they sum to 1).
        score: the detector's confidence that this is a face, in [0, 1]; None for detectors without one (Haar).
        landmarks: five (x, y) points, right eye, left eye, nose tip, right and left mouth corner, where the
            detector gives them (YuNet); else None.
        track_id: in videos and camera streams, the same number for the same face from frame to frame.
        explanation: its Grad-CAM heat map, when the Recognizer was asked to explain; not serialised.
        crop: the (size, size) uint8 gray crop the classifier saw, when the Recognizer was asked to keep crops
            (`keep_crops=True`); else None. Not serialised.

    Examples:
        >>> face = Face.from_probabilities((10, 20, 50, 50), np.array([0.1, 0.7, 0.2]), ["angry", "happy", "sad"])
        >>> face.emotion, face.confidence, face.to_dict()["box"]
        ('happy', 0.7, [10, 20, 50, 50])
    """

    box: tuple[int, int, int, int]
    emotion: str
    confidence: float
    probabilities: dict[str, float]
    score: float | None = None
    landmarks: tuple[tuple[float, float], ...] | None = None
    track_id: int | None = None
    explanation: Explanation | None = field(default=None, repr=False, compare=False)
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_probabilities(cls, box, probabilities: np.ndarray, class_names: list[str], **details: Any) -> Face:
        """A face whose emotion and confidence are the top class of `probabilities` (rounded to 4 places)."""
        top = int(np.argmax(probabilities))
        x, y, w, h = (int(v) for v in box)
        return cls(
            box=(x, y, w, h),
            emotion=class_names[top],
            confidence=round(float(probabilities[top]), 4),
            probabilities={name: round(float(p), 4) for name, p in zip(class_names, probabilities, strict=True)},
            **details,
        )

    def to_dict(self) -> dict[str, Any]:
        landmarks = None if self.landmarks is None else [list(point) for point in self.landmarks]
        return {
            "box": list(self.box),
            "score": self.score,
            "landmarks": landmarks,
            "emotion": self.emotion,
            "confidence": self.confidence,
            "probabilities": dict(self.probabilities),
            "track_id": self.track_id,
        }


@dataclass(frozen=True)
class Result:
    """The faces in one picture or video frame.

    Attributes:
        source: the path, camera number or kind of input ("bytes", "array", "image") it came from.
        width, height: the picture's size in pixels.
        faces: left to right.
        class_names: the model's classes, in its output order.
        frame, time: for video and camera frames, the frame's index and its time in seconds; else None.
        fps: for video and camera frames, how many frames a second are analysed (to write them as a video).
        speed: milliseconds spent on each stage (decode, detect, classify; classify is the batch's time
            shared among its pictures by their number of faces).
        error: why the input could not be read, for inputs kept with errors="keep"; faces is then empty.
        name: the name its outputs take under an output folder (a file's path relative to the folder given).
        image: the picture itself (RGB, or gray for gray input), for `plot`; not serialised.

    Examples:
        >>> from emolens import Recognizer
        >>> result = Recognizer().predict("samples/astronaut.png")[0]
        >>> result.width, result.height, [face.emotion for face in result.faces]
        (512, 512, ['happy'])
        >>> result.plot().shape[0]                     # the annotated picture, with its panel of bars
        512
    """

    source: str
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    frame: int | None = None
    time: float | None = None
    fps: float | None = None
    speed: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    name: str = ""
    image: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def is_video_frame(self) -> bool:
        return self.frame is not None

    @property
    def face_numbers(self) -> list[int | None]:
        """The number each face is drawn, written and named with: 1..N in a picture; in a video, its track id, the
        same from frame to frame (None for a face the tracker has not confirmed yet)."""
        if self.is_video_frame:
            return [face.track_id for face in self.faces]
        return list(range(1, len(self.faces) + 1))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: source, width, height (frame and time for video), faces, speed; or source and error."""
        if self.error is not None:
            return {"source": self.source, "error": self.error}
        result: dict[str, Any] = {"source": self.source, "width": self.width, "height": self.height}
        if self.frame is not None:
            result["frame"], result["time"] = self.frame, self.time
        result["faces"] = [face.to_dict() for face in self.faces]
        result["speed"] = dict(self.speed)
        return result

    def plot(self) -> np.ndarray:
        """A copy of the picture, RGB (H, W', 3) uint8, with each face's box and label drawn on it and a panel
        of bars per emotion beside it (W' = W + the panel's width)."""
        if self.image is None:
            raise EmolensError(f"no picture kept for {self.source} to draw on.")
        rgb = self.image if self.image.ndim == 3 else cv2.cvtColor(self.image, cv2.COLOR_GRAY2RGB)
        # A lone face in a picture needs no number; faces in a video always show theirs, to follow them.
        numbered = self.is_video_frame or len(self.faces) > 1
        return annotate(rgb, self.faces, self.class_names, self.face_numbers if numbered else None)

    def save(self, directory: str | os.PathLike, name: str | None = None) -> Path:
        """Writes the annotated picture to `directory/<name>.annotated.jpg|png` (JPEG for JPEG inputs); returns it."""
        path = Path(directory) / (name or self.name or default_name(self))
        suffix = ".jpg" if path.suffix.lower() in (".jpg", ".jpeg") else ".png"
        return self.write_picture(path.with_name(f"{path.stem}.annotated{suffix}"))

    def write_picture(self, path: str | os.PathLike) -> Path:
        """Writes the annotated picture to exactly `path` (its suffix, .jpg or .png, chooses the format)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(path.suffix, cv2.cvtColor(self.plot(), cv2.COLOR_RGB2BGR))
        if not ok:
            raise EmolensError(f"could not encode the annotated picture for {self.source}.")
        write_bytes(path, encoded.tobytes())
        return path

    def replace(self, **changes: Any) -> Result:
        return replace(self, **changes)


def default_name(result: Result) -> str:
    """An output name for a result with none: the file name, or the kind of input (and frame number)."""
    stem = Path(result.source).name if result.source else "image"
    return f"{stem}-{result.frame:06d}.png" if result.frame is not None else stem
