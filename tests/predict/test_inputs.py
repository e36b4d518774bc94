"""Listing inputs as a stream: folders in sorted path order one folder at a time, list files a line at a time."""

from __future__ import annotations

import os
from pathlib import Path

from emolens.predict.inputs import MAX_LIST_LINE, InputFile, iter_sources
from emolens.predict.picture import Picture


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_a_folder_streams_in_the_order_sorting_every_path_gives(tmp_path):
    root = tmp_path / "photos"
    for name in (
        "a/b.jpg",
        "a.x/c.png",
        "a/B/d.jpg",
        "A.jpg",
        "z.mp4",
        "a/b/e.webp",
        "notes.txt",
        "out/annotated.jpg",
        "m/n/o/p.png",
    ):
        touch(root / name)
    (tmp_path / "elsewhere").mkdir()
    touch(tmp_path / "elsewhere" / "linked.jpg")
    os.symlink(tmp_path / "elsewhere", root / "link")  # a link to a folder is not followed, as rglob does not
    os.symlink(root / "A.jpg", root / "alias.jpg")  # a link to a file is a file
    expected = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".txt" and "out" not in p.parts)
    items = list(iter_sources(root, leave_out=root / "out"))
    assert [item.path for item in items] == expected
    assert items[0].name == "photos/A.jpg" and all(isinstance(item, InputFile) for item in items)


def test_folders_are_listed_as_the_stream_reaches_them(tmp_path):
    touch(tmp_path / "a" / "1.jpg")
    touch(tmp_path / "b" / "2.jpg")
    stream = iter_sources(tmp_path)
    assert next(stream).path.name == "1.jpg"
    touch(tmp_path / "b" / "3.jpg")  # after the stream started, before it reached b
    assert [item.path.name for item in stream] == ["2.jpg", "3.jpg"]


def test_a_list_file_is_read_a_line_at_a_time(tmp_path):
    touch(tmp_path / "a.png")
    touch(tmp_path / "b.png")
    listing = tmp_path / "list.txt"
    listing.write_text("missing.png\na.png\nalso-missing.png\nb.png\n" + "c" * (MAX_LIST_LINE + 1) + "\nb.png\n")
    items = list(iter_sources(listing))
    described = [item.path.name if isinstance(item, InputFile) else item.error for item in items]
    assert described == [
        f"no such file or folder (line 1 of {listing})",
        "a.png",
        f"no such file or folder (line 3 of {listing})",
        "b.png",
        f"not a list of paths: line 5 is longer than {MAX_LIST_LINE // 1024} KB",
    ]
    listing.write_text("missing.png\nalso-missing.png\n")  # names nothing that exists: one error for the file
    (only,) = iter_sources(listing)
    assert isinstance(only, Picture) and only.error.startswith("not a list of image paths")
