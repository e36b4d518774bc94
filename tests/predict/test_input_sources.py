"""`Sources`: a run's inputs listed once (counted and read from one listing), streamed when never counted."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

import emolens.predict.inputs as inputs
from conftest import ASTRONAUT, gray_canvas, png_bytes, save
from emolens.errors import EmolensError
from emolens.predict import Recognizer, Sources


def _clip(path, frames):
    """An MPEG-4 clip of `frames` gray frames, whose container states its frame count."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for _ in range(frames):
        writer.write(np.full((64, 64, 3), 128, np.uint8))
    writer.release()
    return path


@pytest.fixture
def walks(monkeypatch):
    """Every path `inputs` lists (a folder walk, a ZIP's listing, a list file's reading), in order."""
    listed = []
    real_files = inputs._files
    monkeypatch.setattr(inputs, "_files", lambda path, *rest: listed.append(path) or real_files(path, *rest))
    return listed


def test_a_counted_folder_is_walked_once_for_its_count_and_its_pictures(tmp_path, walks):
    folder = tmp_path / "album"
    for name in ("b.png", "a.png", "c/d.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        save(gray_canvas(), folder / name)
    sources = Sources([folder])
    assert walks == []  # made, not listed
    assert sources.count() == 3 and sources.count() == 3
    names = [picture.name for picture in sources.pictures()]
    assert names == ["album/a.png", "album/b.png", "album/c/d.png"]
    assert [picture.name for picture in sources.pictures()] == names  # read twice, from the listing kept
    save(gray_canvas(), folder / "e.png")  # after the count: not in the listing the count was made from
    assert [result.name for result in Recognizer(workers=2).predict(sources)] == names
    assert walks == [folder]


def test_a_sources_never_counted_streams_its_folders_as_they_are_reached(tmp_path, walks):
    for name in ("a/1.png", "b/2.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        save(gray_canvas(), tmp_path / name)
    sources = Sources(tmp_path)
    pictures = sources.pictures()
    assert next(pictures).name.endswith("a/1.png")
    save(gray_canvas(), tmp_path / "b" / "3.png")  # after the stream started, before it reached b
    assert [picture.name.split("/", 1)[1] for picture in pictures] == ["b/2.png", "b/3.png"]
    assert len(list(sources.pictures())) == 3 and walks == [tmp_path, tmp_path]  # listed again on each read


def test_a_list_file_is_read_a_line_at_a_time(tmp_path):
    save(gray_canvas(), tmp_path / "a.png")
    save(gray_canvas(), tmp_path / "b.png")
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\n")
    pictures = Sources(listing).pictures()
    assert next(pictures).source == str(tmp_path / "a.png")
    with open(listing, "a") as file:  # a line written after the first one was read, seen when reached
        file.write("b.png\n")
    assert [picture.source for picture in pictures] == [str(tmp_path / "b.png")]


def test_mixed_inputs_keep_their_order_and_their_count(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    save(gray_canvas(), folder / "a.png")
    _clip(folder / "clip.mp4", frames=7)
    with zipfile.ZipFile(tmp_path / "album.zip", "w") as archive:
        archive.writestr("z.png", png_bytes(gray_canvas()))
        archive.writestr("broken.png", b"not a picture")
    (tmp_path / "list.txt").write_text("photos/a.png\nmissing.png\n")
    given = [
        folder,
        str(tmp_path / "album.zip"),
        [png_bytes(gray_canvas()), Image.fromarray(gray_canvas())],
        gray_canvas(),
        tmp_path / "list.txt",
        tmp_path / "nowhere",
    ]
    sources = Sources(given, every=3)
    assert sources.count() == 1 + 3 + 2 + 2 + 1 + 2 + 1  # the clip's 7 frames, one in 3
    pictures = list(sources.pictures())
    assert len(pictures) == sources.count()
    assert [(picture.name, picture.frame, picture.error is None) for picture in pictures] == [
        ("photos/a.png", None, True),
        ("photos/clip.mp4", 0, True),
        ("photos/clip.mp4", 3, True),
        ("photos/clip.mp4", 6, True),
        ("album/z.png", None, True),
        ("album/broken.png", None, False),  # unreadable: in its place, with its error
        ("bytes", None, True),
        ("image", None, True),
        ("array", None, True),
        ("a.png", None, True),
        ("missing.png", None, False),
        ("nowhere", None, False),
    ]


def test_a_camera_makes_the_count_unknown(tmp_path):
    save(gray_canvas(), tmp_path / "a.png")
    assert Sources([0, tmp_path / "a.png"]).count() is None
    assert Sources([]).count() == 0


def test_what_cannot_be_listed_is_refused_when_counted_before_anything_is_read(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    save(gray_canvas(), photos / "a.png")
    with pytest.raises(EmolensError, match="is the output folder or inside it"):
        Sources(photos, leave_out=photos).count()
    (photos / "out").mkdir()
    save(gray_canvas(), photos / "out" / "old.annotated.png")
    assert Sources(photos, leave_out=photos / "out").count() == 1  # the output folder inside is left out
    (tmp_path / "faces.csv").write_bytes(png_bytes(gray_canvas()))  # an image under an output's name
    refused = Sources([photos, tmp_path / "faces.csv"], written=[tmp_path / "faces.csv"])
    with pytest.raises(EmolensError, match=r"would write its faces\.csv over it"):
        refused.count()
    with pytest.raises(EmolensError, match=r"would write its faces\.csv over it"):
        list(refused.pictures())  # nothing was kept from the listing that failed


@pytest.mark.parametrize("bad", [3.5, True, [ASTRONAUT, {"path": "a.png"}], iter(["a.png"])])
def test_inputs_of_no_known_kind_are_refused_when_the_sources_is_made(bad):
    with pytest.raises(TypeError, match="Expected an image, a path"):
        Sources(bad)


def test_every_is_the_sources_own(tmp_path):
    with pytest.raises(EmolensError, match="every must be at least 1"):
        Sources(ASTRONAUT, every=0)
    sources = Sources(ASTRONAUT, every=2)
    recognizer = Recognizer(workers=1)
    with pytest.raises(EmolensError, match="every=3, but the Sources given analyses every=2"):
        recognizer.predict(sources, every=3, stream=True)  # refused at the call, not at the first result
    assert [r.replace(speed={}) for r in recognizer.predict(sources, every=2)] == [
        r.replace(speed={}) for r in recognizer.predict(str(ASTRONAUT))
    ]
