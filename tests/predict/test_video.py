"""Videos: track ids through a video and across cuts, smoothing, frame times, the H.264 output, summaries, timelines."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import (
    CANVAS_SHAPE,
    CSV_HEADER,
    FACE,
    _moving_faces_video,
    _read_csv,
    astronaut_gray,
    check_result,
    json_lines,
)
from emolens.cli import main
from emolens.constants import FER2013_CLASSES
from emolens.predict import Face

CLASSES = list(FER2013_CLASSES)


def _hard_cut_video(path: Path, fps: float = 10.0) -> Path:
    """Two people for 8 frames, then a hard cut to two others standing where they stood (another room: a
    brighter wall), for 8 frames: what a tracker matching boxes alone carries across the cut."""
    first = cv2.resize(astronaut_gray()[FACE], (120, 120), interpolation=cv2.INTER_AREA)
    second = cv2.flip(np.clip(first.astype(int) + 25, 0, 255).astype(np.uint8), 1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (CANVAS_SHAPE[1], CANVAS_SHAPE[0]))
    for index in range(16):
        canvas = np.full(CANVAS_SHAPE, 90 if index < 8 else 200, np.uint8)
        face = first if index < 8 else second
        canvas[60:180, 40 + 2 * (index % 8) : 160 + 2 * (index % 8)] = face
        canvas[300:420, 600:720] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_a_cut_to_another_shot_starts_new_tracks(recognizer, tmp_path):
    from emolens.predict.tracking import is_shot_change, shot_thumbnail

    results = recognizer.predict(_hard_cut_video(tmp_path / "cut.mp4"))
    ids = [[face.track_id for face in result.faces] for result in results]
    assert all(len(frame) == 2 and None not in frame for frame in ids), ids  # the frame at the cut too
    before, after = {i for frame in ids[:8] for i in frame}, {i for frame in ids[8:] for i in frame}
    assert len(before) == 2 and len(after) == 2 and not before & after, ids
    thumbnails = [shot_thumbnail(result.image[..., 0]) for result in results]
    changes = [is_shot_change(a, b) for a, b in pairwise(thumbnails)]
    assert changes == [False] * 7 + [True] + [False] * 7


def test_a_video_summary_per_face_is_printed_and_written_beside_faces_csv(onnx_model, tmp_path, capsys):
    video = _hard_cut_video(tmp_path / "cut.mp4")
    out = tmp_path / "out"
    assert main(["predict", str(video), "--out", str(out), "--model", str(onnx_model)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "16 frames analysed, 16 with faces, 4 faces tracked; most seen: " in printed[0]
    assert [line.split(":")[0] for line in printed[1:5]] == ["  face 1", "  face 2", "  face 3", "  face 4"]
    header, rows = _read_csv(out / "cut.tracks.csv")
    assert header[:6] == ["face", "first_seen", "last_seen", "frames", "emotion", "share"]
    assert [(row["face"], row["first_seen"], row["last_seen"], row["frames"]) for row in rows] == [
        ("1", "0.0", "0.7", "8"),
        ("2", "0.0", "0.7", "8"),
        ("3", "0.8", "1.5", "8"),
        ("4", "0.8", "1.5", "8"),
    ]
    for row in rows:
        shares = {name: float(row[name]) for name in header[6:]}
        assert sum(shares.values()) == pytest.approx(1.0) and shares[row["emotion"]] == float(row["share"]) == max(
            shares.values()
        )
    _, faces = _read_csv(out / "faces.csv")
    assert all(face["face"] == face["track_id"] for face in faces), "a video's face number is its track id"


def test_each_face_keeps_its_track_id_through_a_video(recognizer, tmp_path):
    results = recognizer.predict(_moving_faces_video(tmp_path / "two.mp4"), stream=True)
    assert not isinstance(results, list)
    results = list(results)
    assert [result.frame for result in results] == list(range(15))
    ids = [[face.track_id for face in result.faces] for result in results]
    assert all(len(frame_ids) == 2 and None not in frame_ids for frame_ids in ids), ids
    moving, still = ids[0]
    assert moving != still and all(frame_ids == [moving, still] for frame_ids in ids)
    again = recognizer.predict(tmp_path / "two.mp4")
    assert [[f.track_id for f in r.faces] for r in again] == ids, "a new predict starts the tracks anew"


def _variable_rate_video(path: Path, times: list[float]) -> Path:
    """An H.264 MP4 whose frames are shown at `times` (seconds), as phones record: no constant frame rate."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index, seconds in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * index, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(seconds * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_frame_times_in_a_variable_frame_rate_video_are_its_timestamps(recognizer, tmp_path):
    times = [0.0, 0.5, 1.0, 2.0, 2.1, 3.5]  # index / (the average rate, 1.98 fps) put frame 3 at 1.52 s
    video = _variable_rate_video(tmp_path / "phone.mp4", times)
    assert [result.time for result in recognizer.predict(video)] == times
    assert [result.time for result in recognizer.predict(video, every=2)] == times[::2]


def test_a_video_with_frames_without_a_face_keeps_its_tracks_and_its_annotated_output(onnx_model, tmp_path, capsys):
    # Face, no face (someone left the picture), face: supervision's ByteTrack returns no "index" data for the
    # empty frames, which once crashed the run and lost the annotated video.
    face = cv2.resize(astronaut_gray()[FACE], (120, 120), interpolation=cv2.INTER_AREA)
    video = tmp_path / "gap.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (CANVAS_SHAPE[1], CANVAS_SHAPE[0]))
    for index in range(9):
        canvas = np.full(CANVAS_SHAPE, 128, np.uint8)
        if not 3 <= index <= 5:
            canvas[60:180, 40:160] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    writer.release()
    out = tmp_path / "out"
    assert main(["predict", str(video), "--json", "--out", str(out), "--model", str(onnx_model), "--smooth", "3"]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [len(line["faces"]) for line in lines] == [1, 1, 1, 0, 0, 0, 1, 1, 1]
    ids = {line["faces"][0]["track_id"] for line in lines if line["faces"]}
    assert len(ids) == 1 and None not in ids, "the face keeps its track across a short gap"
    assert (out / "gap.annotated.mp4").stat().st_size > 0 and (out / "gap.timeline.png").is_file()


def test_smooth_averages_each_track_over_its_last_frames():
    from emolens.predict.tracking import FaceTracker

    tracker = FaceTracker(fps=10, class_names=CLASSES, smooth=2)
    happy, sad = np.eye(7)[CLASSES.index("happy")], np.eye(7)[CLASSES.index("sad")]
    first = tracker.update([Face.from_probabilities((10, 10, 50, 50), happy * 0.9 + 0.1 / 7, CLASSES, score=0.9)])
    second = tracker.update([Face.from_probabilities((11, 10, 50, 50), sad * 0.6 + 0.4 / 7, CLASSES, score=0.9)])
    third = tracker.update([Face.from_probabilities((12, 10, 50, 50), sad * 0.6 + 0.4 / 7, CLASSES, score=0.9)])
    assert first[0].track_id == second[0].track_id == third[0].track_id is not None
    assert first[0].emotion == "happy" and second[0].emotion == "happy", "one sad frame after a clear happy one"
    assert second[0].probabilities["sad"] == pytest.approx((0.6 + 0.4 / 7 + 0.1 / 7) / 2, abs=1e-3)
    assert third[0].emotion == "sad" and third[0].confidence == pytest.approx(0.6 + 0.4 / 7, abs=1e-3)


def test_predict_video_writes_an_h264_mp4_a_timeline_per_track_and_the_csv(onnx_model, tmp_path, capsys):
    import av

    video = _moving_faces_video(tmp_path / "clip.mp4", frames=12)
    out = tmp_path / "out"
    assert main(["predict", str(video), "--every", "3", "--json", "--out", str(out), "--model", str(onnx_model)]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["frame"] for line in lines] == [0, 3, 6, 9]
    assert [line["time"] for line in lines] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    for line in lines:
        check_result(line, video=True)
        assert line["source"] == str(video) and len(line["faces"]) == 2
    annotated = out / "clip.annotated.mp4"
    with av.open(str(annotated)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(10 / 3, rel=0.01)
        assert sum(1 for _ in container.decode(video=0)) == 4
    assert (out / "clip.timeline.png").stat().st_size > 0
    header, rows = _read_csv(out / "faces.csv")
    assert header == CSV_HEADER
    assert [int(row["frame"]) for row in rows] == [0, 0, 3, 3, 6, 6, 9, 9]
    assert len({row["track_id"] for row in rows}) == 2 and "" not in {row["track_id"] for row in rows}


def test_the_timeline_draws_a_lane_per_face_coloured_by_emotion_and_faint_when_unsure(tmp_path, monkeypatch):
    from matplotlib.colors import to_rgba

    import emolens.plots as plots
    from emolens.constants import emotion_color

    drawn = {}
    save_figure = plots._save
    monkeypatch.setattr(
        plots, "_save", lambda fig, path, **kw: drawn.setdefault("fig", fig) and save_figure(fig, path, **kw)
    )
    tracks = {
        1: (np.array([0.0, 0.1, 0.2]), np.array([3, 3, 5]), np.array([0.9, 0.5, 1.0])),
        4: (np.array([0.1, 0.2, 2.0, 2.1]), np.array([4, 4, 4, 0]), np.array([1.0, 1.0, 1.0, 1.0])),
    }
    plots.plot_emotion_timeline(tracks, CLASSES, tmp_path / "t.png")
    (ax,) = drawn["fig"].axes
    assert [label.get_text() for label in ax.get_yticklabels()] == ["face 1", "face 4"]  # in the order given, top first
    first, second = ax.collections
    assert np.allclose(
        first.get_facecolors(),
        [to_rgba(emotion_color(CLASSES[c], c), 0.2 + 0.8 * p) for c, p in ((3, 0.9), (3, 0.5), (5, 1.0))],
    )
    # Face 4 was unseen for 1.8 s: its frame at 0.2 s lasts one frame interval, not until 2.0 s.
    spans = [path.get_extents().x1 - path.get_extents().x0 for path in second.get_paths()]
    assert spans == pytest.approx([0.1, 0.1, 0.1, 0.1])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [CLASSES[i] for i in (0, 3, 4, 5)]


def test_annotated_videos_play_in_headless_chromium(onnx_model, tmp_path, browser):
    video = _moving_faces_video(tmp_path / "clip.mp4", frames=20)
    assert main(["predict", str(video), "--out", str(tmp_path / "out"), "--model", str(onnx_model)]) == 0
    (tmp_path / "out" / "play.html").write_text('<video id="v" src="clip.annotated.mp4" muted playsinline></video>')
    page = browser.new_page()
    try:
        page.goto((tmp_path / "out" / "play.html").as_uri())
        page.evaluate("document.getElementById('v').play().catch(() => {})")
        page.wait_for_function(
            "(() => { const v = document.getElementById('v'); return v.readyState === 4 || v.currentTime > 0; })()",
            timeout=20_000,
        )
        assert page.evaluate("document.getElementById('v').videoWidth") > CANVAS_SHAPE[1]
    finally:
        page.close()
