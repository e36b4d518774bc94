"""The --show window (Tk), under a virtual display (Xvfb)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from conftest import ASTRONAUT, _moving_faces_video
from emolens.cli import main


@pytest.fixture(scope="module")
def virtual_display() -> Iterator[str]:
    """An X display (Xvfb) for the --show window; skipped where Xvfb is not installed (apt install xvfb)."""
    import shutil
    import time

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt install xvfb): the --show window needs a display")
    number = next(
        n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists()
    )
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"], stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.1)
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def test_the_show_window_draws_each_annotated_frame_shrunk_to_fit_and_stops_when_closed(virtual_display, monkeypatch):
    from emolens.predict.window import LiveWindow

    monkeypatch.setenv("DISPLAY", virtual_display)
    window = LiveWindow("test")
    picture = np.zeros((1600, 1000, 3), np.uint8)
    picture[:, :, 0] = 200  # red, larger than the 1280x800 screen
    window.show(picture)
    shown = window._photo
    assert (shown.width(), shown.height()) == (int(1000 * 720 / 1600), 720)  # 90% of the screen's height
    assert window.label.winfo_height() >= 720 and window.shown == 1
    assert shown._PhotoImage__photo.get(10, 10) == (200, 0, 0)
    window.root.focus_force()
    window.root.update()
    window.root.event_generate("<Escape>", when="tail")  # a key press, as the person would
    window.root.update()
    assert window.closed
    window.show(picture)
    assert window.shown == 1, "nothing is drawn once closed"
    window.close()


def test_predict_show_plays_a_video_in_a_window(virtual_display, onnx_model, tmp_path):
    video = _moving_faces_video(tmp_path / "clip.mp4", frames=6)
    command = [sys.executable, "-m", "emolens", "predict", str(video), "--show", "--model", str(onnx_model)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "DISPLAY": virtual_display}
    )
    assert done.returncode == 0, done.stderr
    assert "6 frames analysed, 6 with faces, 2 faces tracked" in done.stdout


def test_show_without_a_display_is_a_one_line_error(onnx_model, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["predict", str(ASTRONAUT), "--show", "--model", str(onnx_model)]) == 2
    assert "--show needs a display" in capsys.readouterr().err
