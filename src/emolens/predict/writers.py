"""Writing Results: small writers for annotated pictures, annotated videos (H.264 MP4) and JSON lines, and
`OutputFolder`, which sends each Result to the right ones, and to the registered output formats (`formats/`;
faces.csv by default), for `emolens predict --out DIR`.

Every file is written atomically (a video when it is finished), so an interrupted run leaves whole files only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from emolens._io import atomic_path, write_bytes, write_text
from emolens.errors import EmolensError
from emolens.predict.formats import DEFAULT_OUTPUT_FORMAT, output_format_classes
from emolens.predict.inputs import Inputs
from emolens.predict.results import Result
from emolens.predict.sources import Sources
from emolens.predict.tracks import VideoTracks

logger = logging.getLogger(__name__)


class JsonLinesWriter:
    """One JSON object per Result (see `Result.to_dict`) per line, flushed as written."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, result: Result) -> None:
        self.stream.write(json.dumps(result.to_dict()) + "\n")
        self.stream.flush()


class VideoWriter:
    """An annotated video as H.264 in an MP4 that browsers play, encoded by PyAV (its wheels bundle libx264).

    The file appears when `close` is called; frames must all have one size (odd sides are padded by a pixel,
    as H.264's 4:2:0 colour needs even ones).
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        import av  # only videos need it

        self.path = Path(path)
        self._av = av
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self.container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        except (ValueError, av.error.FFmpegError) as error:
            self.container.close()
            self._atomic.__exit__(type(error), error, None)
            raise EmolensError(
                f"this PyAV has no H.264 encoder ({error}): install PyAV's own wheel (pip install av)."
            ) from error
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "23", "preset": "veryfast"}
        self.size: tuple[int, int] | None = None

    def write(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        if self.size is None:
            self.size = (width + width % 2, height + height % 2)
            self.stream.width, self.stream.height = self.size
        padded = np.pad(rgb, ((0, self.size[1] - height), (0, self.size[0] - width), (0, 0)), mode="edge")
        for packet in self.stream.encode(self._av.VideoFrame.from_ndarray(padded, format="rgb24")):
            self.container.mux(packet)

    def close(self, error: BaseException | None = None) -> None:
        """Finishes the file; with `error`, drops it instead."""
        try:
            if error is None and self.size is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
        finally:
            self.container.close()
            if error is None and self.size is None:
                error = EmolensError("no frames")  # an empty video is no file
            self._atomic.__exit__(type(error) if error else None, error, None)


class OutputFolder:
    """What `--out DIR` promises: each picture annotated (`<name>.annotated.png|jpg`), each video annotated
    (`<name>.annotated.mp4`) with its timeline (`<name>.timeline.png`, one lane per tracked face) and its
    faces' summary (`<name>.tracks.csv`: when each was seen, its main emotion and their shares), and one
    file per output format (faces.csv by default; see `formats.output_formats`). Output names never collide
    and never leave DIR.

    Examples:
        >>> from emolens.predict import Recognizer
        >>> out = OutputFolder("predictions", Recognizer().class_names, formats=("csv", "jsonl"))  # doctest: +SKIP
        >>> for result in Recognizer().predict("photos/", stream=True):                           # doctest: +SKIP
        ...     out.write(result)
        >>> out.close()                                                                            # doctest: +SKIP
    """

    def __init__(
        self, directory: str | os.PathLike, class_names: list[str], formats: Iterable[str] = (DEFAULT_OUTPUT_FORMAT,)
    ) -> None:
        format_classes = output_format_classes(formats)
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise EmolensError(
                f"--out {self.directory} is a file: "
                "--out takes a folder (made if missing) to write the annotated pictures and faces.csv into."
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.class_names = class_names
        self.files = [cls(self.directory, class_names) for cls in format_classes]
        self.used: set[str] = set()
        self.video: VideoWriter | None = None
        self.video_source: str | None = None
        self.video_name = ""
        self.tracks = VideoTracks(class_names)

    def sources(self, inputs: Inputs, *, every: int = 1) -> Sources:
        """`Sources(inputs, every=every)` for predicting into this folder: input folders are listed without this
        one (its files are annotated copies from an earlier run, not photos), and an input that is a file this
        folder will write (its faces.csv, ...) is refused, as it would be overwritten.

        Raises:
            EmolensError: when the Sources is listed: an input folder is this one or inside it, or an input is a
                file this folder will write.
        """
        return Sources(inputs, every=every, leave_out=self.directory, written=[file.path for file in self.files])

    def _unique(self, name: str, suffix: str) -> Path:
        """`<name's stem>.annotated<suffix>` under the folder; a name already used gets -2, -3, ... added."""
        path = self.directory / name
        candidate, number = path.with_name(f"{path.stem}.annotated{suffix}"), 1
        while str(candidate) in self.used:
            number += 1
            candidate = path.with_name(f"{path.stem}-{number}.annotated{suffix}")
        self.used.add(str(candidate))
        return candidate

    def write(self, result: Result) -> Path | None:
        """Writes one Result; returns the annotated picture's path (None for video frames and failures)."""
        if result.error is not None:
            return None
        for file in self.files:
            file.write(result)
        if not result.is_video_frame:
            self.finish_video()
            suffix = ".jpg" if Path(result.name).suffix.lower() in (".jpg", ".jpeg") else ".png"
            annotated = result.write_picture(self._unique(result.name or "image", suffix))
            self._write_explanations(result, annotated)
            return annotated
        if self.video is None or result.source != self.video_source:
            self.finish_video()
            self.video_source, self.video_name = result.source, result.name
            self.video = VideoWriter(self._unique(result.name, ".mp4"), fps=result.fps or 30.0)
        self.video.write(result.plot())
        self.tracks.add(result)
        return None

    def _write_explanations(self, result: Result, annotated: Path) -> None:
        """`<name>.face<K>.explain.png` beside the annotated picture: face K (numbered as on it and in faces.csv)
        enlarged under its heat map."""
        stem = annotated.name[: -len(".annotated" + annotated.suffix)]
        for number, face in zip(result.face_numbers, result.faces, strict=True):
            if face.explanation is not None:
                ok, encoded = cv2.imencode(".png", cv2.cvtColor(face.explanation.plot(), cv2.COLOR_RGB2BGR))
                if ok:
                    write_bytes(annotated.with_name(f"{stem}.face{number}.explain.png"), encoded.tobytes())

    def finish_video(self, error: BaseException | None = None) -> None:
        """Closes the current video (dropped with `error`), draws its timeline and writes its tracks' summary."""
        if self.video is None:
            return
        from emolens.plots import plot_emotion_timeline  # matplotlib only when a video is written

        video, self.video = self.video, None
        video.close(error)
        if error is None:
            stem = video.path.name[: -len(".annotated.mp4")]
            plot_emotion_timeline(
                self.tracks.for_timeline(),
                self.class_names,
                video.path.with_name(f"{stem}.timeline.png"),
                title=self.video_source,
            )
            write_text(video.path.with_name(f"{stem}.tracks.csv"), self.tracks.to_csv())
        self.tracks = VideoTracks(self.class_names)
        self._close_files()

    def close(self, error: BaseException | None = None) -> None:
        if self.video is not None:
            self.finish_video(error)  # which closes the format files too
        else:
            self._close_files()

    def _close_files(self) -> None:
        for file in self.files:
            file.close()
