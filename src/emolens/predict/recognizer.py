"""The emotion of every face in any picture, video or camera stream: decode, detect, crop, classify, track.

from emolens import Recognizer
result = Recognizer().predict("photo.jpg")[0]
result.faces[0].emotion, result.faces[0].confidence, result.plot(), result.to_dict()

for result in Recognizer().predict("clip.mp4", stream=True):
    print(result.frame, [(face.track_id, face.emotion) for face in result.faces])
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Literal, ParamSpec, TypeVar, overload

import numpy as np

from emolens.data.decode import UndecodableImage
from emolens.errors import EmolensError
from emolens.models.classifier import DEFAULT_MODEL, Classifier, check_tta, load_classifier
from emolens.predict.detectors import DEFAULT_DETECTOR_CONFIG, Detections, DetectorConfig, crop_squares
from emolens.predict.inputs import PendingPicture
from emolens.predict.picture import Color, Picture
from emolens.predict.pool import Detected, DetectionPool, default_workers
from emolens.predict.results import Explanation, Face, Result
from emolens.predict.sources import Source, as_sources, pending_pictures
from emolens.predict.tracking import FaceTracker

# Pictures (photos or video frames) whose faces go through the classifier together: enough to fill a batch,
# few enough to keep memory small and a stream's results prompt. A camera's frames go one at a time, and a
# batch also ends once its pictures hold BATCH_PIXELS: sixteen 64-megapixel photos would hold 4 GB.
PICTURES_PER_BATCH = 16
BATCH_PIXELS = 16_000_000
Errors = Literal["raise", "keep"]
P = ParamSpec("P")
T = TypeVar("T")


class Recognizer:
    """Finds faces and recognises their emotions.

    Args:
        model: "default" (the bundled model, run by ONNX Runtime), a run folder, a .keras or an .onnx file.
        detector: a DetectorConfig, or a detector name ("yunet", the bundled default, or "haar").
        batch_size: faces per classifier call. Defaults to 256.
        classifier: an already loaded Classifier, used instead of `model` (to share one between recognizers).
        tta: test-time augmentation: "none", "flip" (each face averaged with its mirror) or "crops" (ten crops,
            for models trained on crops). Defaults to "none".
        explain: give every face a Grad-CAM `explanation` (see emolens.predict.explain): it loads the Keras
            model behind `model` (for the default, the bundled default.keras) and costs a backward pass per face.
            Defaults to False.
        workers: threads that decode pictures and find their faces side by side (results keep the input's
            order); 1 does everything on the calling thread. Defaults to the cores this process may use.
        keep_crops: give every face its `crop`, the gray square the classifier saw (the model's input size,
            48x48 for the bundled model), as `emolens data faces` writes them. Defaults to False.

    Examples:
        >>> recognizer = Recognizer()                                   # the bundled model and YuNet
        >>> [(face.emotion, face.confidence) for face in recognizer.predict("samples/astronaut.png")[0].faces]
        [('happy', 0.994)]
    """

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        detector: DetectorConfig | str = DEFAULT_DETECTOR_CONFIG,
        batch_size: int = 256,
        classifier: Classifier | None = None,
        tta: str = "none",
        explain: bool = False,
        workers: int | None = None,
        keep_crops: bool = False,
    ) -> None:
        self.tta = check_tta(tta)  # before any model loads
        self.detector_config = DetectorConfig(detector) if isinstance(detector, str) else detector
        self.classifier = classifier or load_classifier(model)
        self.pool = DetectionPool(
            self.detector_config,
            workers=default_workers() if workers is None else workers,
            crop_size=self.classifier.input_size,
        )
        self.detector = self.pool.detector
        self.batch_size = batch_size
        self.keep_crops = keep_crops
        self.explainer = None
        if explain:
            from emolens.predict.explain import GradCam  # Keras, only when asked

            self.explainer = GradCam(self.classifier.path)

    @property
    def class_names(self) -> list[str]:
        return self.classifier.class_names

    @overload
    def predict(
        self,
        source: Source,
        *,
        stream: Literal[False] = False,
        color: Color | None = None,
        every: int | None = None,
        smooth: int = 0,
        errors: Errors = "raise",
    ) -> list[Result]: ...

    @overload
    def predict(
        self,
        source: Source,
        *,
        stream: Literal[True],
        color: Color | None = None,
        every: int | None = None,
        smooth: int = 0,
        errors: Errors = "raise",
    ) -> Iterator[Result]: ...

    @overload
    def predict(
        self,
        source: Source,
        *,
        stream: bool,
        color: Color | None = None,
        every: int | None = None,
        smooth: int = 0,
        errors: Errors = "raise",
    ) -> list[Result] | Iterator[Result]: ...

    def predict(
        self,
        source: Source,
        *,
        stream: bool = False,
        color: Color | None = None,
        every: int | None = None,
        smooth: int = 0,
        errors: Errors = "raise",
    ) -> list[Result] | Iterator[Result]:
        """The faces in every picture of `source`, one Result per image or analysed video frame, in order.

        Args:
            source: an image, video or folder path, a camera number, encoded bytes, a PIL image, a uint8 numpy
                array (gray, or colour with `color`), or a list of these (see `Sources`); or a `Sources`, to count
                its pictures first without listing its folders twice.
            stream: return a generator instead of a list: for videos and cameras, whose results would not fit
                in memory (each Result keeps its picture).
            color: "rgb" or "bgr", for colour numpy arrays only.
            every: analyse every `every`-th frame of a video file. Defaults to 1; a Sources' own `every`, which
                this may repeat but not change.
            smooth: in videos, average each tracked face's probabilities over its last `smooth` frames.
            errors: "raise" (UndecodableImage for the first unreadable input) or "keep" (a Result with `error`).

        Raises:
            UndecodableImage: an input cannot be read, with errors="raise".
            EmolensError: a camera cannot be opened; `every` differs from the Sources' own.
            TypeError: an input is none of the kinds above.
        """
        _check_options(smooth, errors)
        sources = as_sources(source, every)
        results = self._results(pending_pictures(sources, color=color), smooth=smooth, errors=errors)
        return results if stream else list(results)

    def predict_pictures(
        self, pictures: Iterable[Picture], *, smooth: int = 0, errors: Errors = "raise"
    ) -> Iterator[Result]:
        """`predict(..., stream=True)` on pictures the caller has read (as `Sources.pictures` gives them, behind
        a progress bar, say): one Result per Picture, in order; `smooth` and `errors` as
        for `predict`. `collect_faces` is given its pictures so.

        Raises:
            UndecodableImage: a picture could not be read, with errors="raise".
        """
        _check_options(smooth, errors)
        return self._results(pictures, smooth=smooth, errors=errors)

    def _results(
        self, pictures: Iterable[Picture | PendingPicture], *, smooth: int, errors: Errors
    ) -> Iterator[Result]:
        trackers: dict[str, FaceTracker] = {}
        batch: list[Detected] = []
        pixels = 0
        for detected in self.pool.detected(pictures):
            batch.append(detected)
            pixels += detected.pixels
            if len(batch) >= PICTURES_PER_BATCH or detected.picture.live or pixels >= BATCH_PIXELS:
                yield from self._classified(batch, trackers, smooth, errors)
                batch, pixels = [], 0
        yield from self._classified(batch, trackers, smooth, errors)

    def _classified(
        self, batch: list[Detected], trackers: dict[str, FaceTracker], smooth: int, errors: Errors
    ) -> Iterator[Result]:
        """The batch's Results, in order: every face crop classified (and explained) in one call, then each
        picture's faces built from its share of them, tracked in videos, and timed."""
        crops = _stacked_crops(batch, self.classifier.input_size)
        probabilities, heatmaps, ms_per_face = self._classify(crops)
        start = 0
        for detected in batch:
            picture, found = detected.picture, detected.found
            if found is None or picture.gray is None:
                yield self._unreadable(picture, errors)
                continue
            share, start = slice(start, start + len(found)), start + len(found)
            faces = self._faces(found, probabilities[share], crops[share] if self.keep_crops else None)
            if heatmaps is not None:
                faces = self._explained(faces, found, heatmaps[share], crops[share])
            if picture.frame is not None:
                faces = self._tracker(trackers, picture, smooth).update(faces, picture.gray)
            speed = {"decode": picture.decode_ms, "detect": detected.detect_ms}
            speed |= {stage: ms * len(faces) for stage, ms in ms_per_face.items()}
            yield self._result(picture, picture.gray, faces, speed)

    def _classify(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict[str, float]]:
        """The crops' probabilities, their heat maps (None unless explaining), and the milliseconds each stage
        took per crop."""
        probabilities, classify_ms = _timed(self.classifier.predict, crops, batch_size=self.batch_size, tta=self.tta)
        ms_per_face = {"classify": classify_ms / max(1, len(crops))}
        if self.explainer is None:
            return probabilities, None, ms_per_face
        heatmaps, explain_ms = _timed(self.explainer.heatmaps, crops, probabilities.argmax(axis=1))
        return probabilities, heatmaps, ms_per_face | {"explain": explain_ms / max(1, len(crops))}

    def _unreadable(self, picture: Picture, errors: Errors) -> Result:
        """An unreadable picture's Result, with its error; with errors="raise", UndecodableImage instead."""
        if errors == "raise":
            raise UndecodableImage(f"{picture.source}: {picture.error}")
        return Result(picture.source, 0, 0, class_names=self.class_names, error=picture.error, name=picture.name)

    def _tracker(self, trackers: dict[str, FaceTracker], picture: Picture, smooth: int) -> FaceTracker:
        """The tracker of the video or camera stream the frame `picture` comes from, started at its first frame."""
        if picture.source not in trackers:
            trackers[picture.source] = FaceTracker(picture.fps or 30.0, self.class_names, smooth)
        return trackers[picture.source]

    def _faces(self, found: Detections, probabilities: np.ndarray, crops: np.ndarray | None) -> list[Face]:
        """A Face per detection, from its box, detector score and landmarks, its row of `probabilities` and
        (when kept) its crop."""
        return [
            Face.from_probabilities(
                box,
                p,
                self.class_names,
                score=None if found.scores is None else round(float(found.scores[i]), 4),
                landmarks=None
                if found.landmarks is None
                else tuple((round(float(x), 1), round(float(y), 1)) for x, y in found.landmarks[i]),
                crop=None if crops is None else crops[i],
            )
            for i, (box, p) in enumerate(zip(found.boxes, probabilities, strict=True))
        ]

    def _explained(self, faces: list[Face], found: Detections, heatmaps: np.ndarray, crops: np.ndarray) -> list[Face]:
        """The faces, each with its heat map over its crop and the square of the picture that crop came from."""
        squares = crop_squares(found.boxes, self.detector.framing)
        explained = []
        for face, heatmap, crop, square in zip(faces, heatmaps, crops, squares, strict=True):
            x, y, side = (int(v) for v in square)
            explained.append(replace(face, explanation=Explanation(heatmap, crop, (x, y, side))))
        return explained

    def _result(self, picture: Picture, gray: np.ndarray, faces: list[Face], speed: dict[str, float]) -> Result:
        """A readable picture's Result, its stages' times (`speed`) in milliseconds to two places."""
        return Result(
            picture.source,
            gray.shape[1],
            gray.shape[0],
            faces,
            class_names=self.class_names,
            frame=picture.frame,
            time=picture.time,
            fps=picture.fps,
            speed={stage: round(ms, 2) for stage, ms in speed.items()},
            name=picture.name,
            image=picture.image,
        )


def _check_options(smooth: int, errors: Errors) -> None:
    if errors not in ("raise", "keep"):
        raise ValueError(f"Expected errors='raise' or 'keep'. Received: errors={errors!r}")
    if smooth < 0:
        raise EmolensError(f"smooth must be 0 or more frames, not {smooth}.")


def _stacked_crops(batch: list[Detected], size: int) -> np.ndarray:
    """Every face crop of the batch's pictures, in order, as one (K, size, size) uint8 array."""
    crops = [detected.crops for detected in batch if detected.crops is not None]
    return np.concatenate(crops) if crops else np.zeros((0, size, size), dtype=np.uint8)


def _timed(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> tuple[T, float]:
    """`call(*args, **kwargs)` and the milliseconds it took."""
    began = time.perf_counter()
    value = call(*args, **kwargs)
    return value, (time.perf_counter() - began) * 1000


__all__ = ["Recognizer"]
