"""What each tracked face of a video showed: when it was seen, its main emotion and the share of each, for the
summary `emolens predict` prints, the `<name>.tracks.csv` written beside faces.csv and the timeline plot."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from emolens._io import spreadsheet_safe
from emolens.predict.results import Result


@dataclass
class Track:
    """One face through a video: at each analysed frame it was seen in, the time, its emotion and confidence."""

    number: int
    times: list[float] = field(default_factory=list)
    emotions: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)

    def shares(self) -> Counter[str]:
        """Each emotion's share of the frames the face was seen in."""
        counts = Counter(self.emotions)
        return Counter({emotion: count / len(self.emotions) for emotion, count in counts.items()})

    def main_emotion(self) -> tuple[str, float]:
        """The emotion shown in most of its frames (the first shown, on a tie), and that share."""
        return max(self.shares().items(), key=lambda item: (item[1], -self.emotions.index(item[0])))


class VideoTracks:
    """The tracked faces of one video, gathered from its frames' Results in order.

    Examples:
        >>> from emolens.predict import Recognizer
        >>> tracks = VideoTracks(Recognizer().class_names)                    # doctest: +SKIP
        >>> for result in Recognizer().predict("clip.mp4", stream=True):      # doctest: +SKIP
        ...     tracks.add(result)
        >>> print(tracks.to_csv())                                              # doctest: +SKIP
    """

    def __init__(self, class_names: list[str]) -> None:
        self.class_names = class_names
        self.tracks: dict[int, Track] = {}

    def add(self, result: Result) -> None:
        """Adds one frame's faces; faces the tracker has not numbered yet are left out."""
        for number, face in zip(result.face_numbers, result.faces, strict=True):
            if number is not None:
                track = self.tracks.setdefault(number, Track(number))
                track.times.append(result.time or 0.0)
                track.emotions.append(face.emotion)
                track.confidences.append(face.confidence)

    def ordered(self) -> list[Track]:
        """The tracks by when they were first seen."""
        return sorted(self.tracks.values(), key=lambda track: (track.times[0], track.number))

    def rows(self) -> list[dict[str, object]]:
        """One row per face: its number, first and last time seen (s), analysed frames, main emotion and share,
        then each class's share of its frames."""
        rows = []
        for track in self.ordered():
            emotion, share = track.main_emotion()
            shares = track.shares()
            rows.append(
                {
                    "face": track.number,
                    "first_seen": round(track.times[0], 3),
                    "last_seen": round(track.times[-1], 3),
                    "frames": len(track.times),
                    "emotion": emotion,
                    "share": round(share, 4),
                    **{name: round(shares.get(name, 0.0), 4) for name in self.class_names},
                }
            )
        return rows

    def to_csv(self) -> str:
        """`rows` as CSV text, a header first."""
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer,
            fieldnames=["face", "first_seen", "last_seen", "frames", "emotion", "share", *self.class_names],
            lineterminator="\n",
        )
        writer.writerow({name: spreadsheet_safe(name) for name in writer.fieldnames})
        writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in self.rows())
        return buffer.getvalue()

    def for_timeline(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """track number -> (times, class indices, confidences), as `emolens.plots.plot_emotion_timeline` takes."""
        return {
            track.number: (
                np.array(track.times),
                np.array([self.class_names.index(e) for e in track.emotions]),
                np.array(track.confidences),
            )
            for track in self.ordered()
        }
