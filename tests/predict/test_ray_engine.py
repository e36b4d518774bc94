"""`emolens predict --engine ray`: the Parquet rows Ray Data actors write equal what one process gives."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from conftest import ROOT
from emolens.models.classifier import BUNDLED_DIR

ASTRONAUT = ROOT / "samples" / "astronaut.png"
PHOTOS = 240

pytest.importorskip("ray", reason='the Ray engine needs the ray extra: pip install -e ".[ray]"')
pq = pytest.importorskip("pyarrow.parquet")


def emolens(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emolens", *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of photo-like images (the portrait scaled, turned, mirrored, dimmed, on varied canvases),
    blank pictures, unreadable files, a ZIP of photos and a short video with frames without a face."""
    root = tmp_path_factory.mktemp("inputs")
    photos = root / "photos"
    photos.mkdir()
    portrait = Image.open(ASTRONAUT).convert("RGB")
    rng = np.random.default_rng(0)
    for index in range(PHOTOS):
        picture = portrait.rotate(
            float(rng.uniform(-20, 20)),
            resample=Image.BILINEAR,
            fillcolor=tuple(int(v) for v in rng.integers(0, 256, 3)),
        )
        if index % 2:
            picture = picture.transpose(Image.FLIP_LEFT_RIGHT)
        picture = ImageEnhance.Brightness(picture).enhance(float(rng.uniform(0.5, 1.3)))
        side = int(rng.integers(160, 700))
        picture = picture.resize((side, side), Image.BILINEAR)
        canvas = Image.new(
            "RGB",
            (side + int(rng.integers(0, 300)), side + int(rng.integers(0, 200))),
            tuple(int(v) for v in rng.integers(0, 256, 3)),
        )
        canvas.paste(
            picture, (int(rng.integers(0, canvas.width - side + 1)), int(rng.integers(0, canvas.height - side + 1)))
        )
        canvas.save(photos / f"{index:03d}.{'jpg' if index % 3 else 'png'}", quality=90)
    for index in range(10):
        Image.new("L", (320, 240), 20 * index).save(photos / f"blank{index}.png")
    (photos / "broken.jpg").write_bytes(b"not a picture")
    (photos / "empty.png").write_bytes(b"")
    with zipfile.ZipFile(root / "archive.zip", "w") as archive:
        for index in range(5):
            archive.write(
                photos / f"{index:03d}.{'jpg' if index % 3 else 'png'}",
                f"inner/{index}.img.png" if index % 3 == 0 else f"inner/{index}.jpg",
            )
        archive.writestr("inner/clip.mp4", b"video bytes")
    frame = cv2.cvtColor(np.asarray(portrait.resize((320, 320))), cv2.COLOR_RGB2BGR)
    video = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 320))
    for shift in range(12):
        # Frames 4-6 hold no face (someone left the picture): the tracker must carry on through them.
        video.write(np.roll(frame, 4 * shift, axis=1) if not 4 <= shift <= 6 else np.full_like(frame, 90))
    video.release()
    return root


def rows_from_json(lines: list[dict]) -> dict[tuple, dict]:
    """`emolens predict --json` objects as Parquet-like rows keyed by (source, frame, box)."""
    rows = {}
    for line in lines:
        if "error" in line:
            rows[(line["source"], None, None)] = {"error": line["error"]}
            continue
        if not line["faces"]:
            rows[(line["source"], line.get("frame"), None)] = {"width": line["width"], "height": line["height"]}
        for face in line["faces"]:  # keyed by box: in videos a face's number is its track id, unset at first
            rows[(line["source"], line.get("frame"), tuple(face["box"]))] = {
                "width": line["width"],
                "height": line["height"],
                "box": face["box"],
                "score": face["score"],
                "emotion": face["emotion"],
                "track_id": face["track_id"],
                **face["probabilities"],
            }
    return rows


def rows_from_parquet(folder: Path) -> dict[tuple, dict]:
    table = pq.read_table(folder).to_pylist()
    rows = {}
    for row in table:
        key = (row["source"], row["frame"], None if row["x"] is None else tuple(row[c] for c in "xywh"))
        assert key not in rows, f"row {key} written twice"
        if row["error"] is not None:
            rows[key] = {"error": row["error"]}
        elif row["emotion"] is None:
            rows[key] = {"width": row["width"], "height": row["height"]}
        else:
            rows[key] = {
                "width": row["width"],
                "height": row["height"],
                "box": [row[c] for c in "xywh"],
                "score": row["score"],
                "emotion": row["emotion"],
                "track_id": row["track_id"],
                **{name: row[name] for name in PROBABILITIES},
            }
    return rows


PROBABILITIES = tuple(json.loads((BUNDLED_DIR / "default.json").read_text())["class_names"])  # the bundled model's


def assert_same_rows(expected: dict[tuple, dict], found: dict[tuple, dict]) -> None:
    assert sorted(found, key=repr) == sorted(expected, key=repr)
    for key, want in expected.items():
        got = found[key]
        assert set(got) == set(want), key
        for column, value in want.items():
            if column in PROBABILITIES or column == "score":
                # The same network on other batches may differ in the last float bits, so in the 4th decimal.
                assert got[column] == pytest.approx(value, abs=2e-4), (key, column)
            else:
                assert got[column] == value, (key, column)


@pytest.mark.slow
def test_ray_parquet_rows_equal_the_single_process_json_and_a_rerun_resumes(inputs, tmp_path, monkeypatch):
    sources = ["photos", "archive.zip", "clip.avi"]
    local = emolens("predict", *sources, "--json", cwd=inputs)
    assert local.returncode == 1, local.stderr  # the unreadable inputs
    expected = rows_from_json([json.loads(line) for line in local.stdout.splitlines()])
    # The local engine reports unreadable inputs on stderr ("skipped SOURCE: why"); Ray keeps them as rows.
    skipped = [
        line.removeprefix("skipped ").split(": ", 1)
        for line in local.stderr.splitlines()
        if line.startswith("skipped ")
    ]
    expected |= {(source, None, None): {"error": why} for source, why in skipped}
    faces = sum(1 for key in expected if key[2] is not None)
    assert faces >= PHOTOS * 0.8 and len(skipped) == 3

    out = tmp_path / "parquet"
    done = emolens("predict", *sources, "--engine", "ray", "--workers", "2", "--out", out, cwd=inputs)
    assert done.returncode == 1 and "3 input(s) could not be read" in done.stdout + done.stderr, (
        done.stdout + done.stderr
    )
    assert "Traceback" not in done.stderr
    assert_same_rows(expected, rows_from_parquet(out))
    parts = sorted(out.glob("part-*.parquet"))
    assert parts and not list(out.glob(".*"))  # whole parts only, no temporary files left

    # A re-run predicts only what the folder does not hold yet: here one new photo, a copy of another.
    (inputs / "photos" / "zz-new.jpg").write_bytes((inputs / "photos" / "001.jpg").read_bytes())
    from emolens.predict.ray_engine import predict_to_parquet

    monkeypatch.chdir(inputs)
    try:
        summary = predict_to_parquet(["photos"], out, workers=1)
    finally:
        (inputs / "photos" / "zz-new.jpg").unlink()
    assert (summary.inputs, summary.skipped, summary.parts) == (1, PHOTOS + 12, 1)
    again = rows_from_parquet(out)
    copy = {("photos/001.jpg", *key[1:]): row for key, row in again.items() if key[0] == "photos/zz-new.jpg"}
    assert copy and all(row["emotion"] == expected[key]["emotion"] for key, row in copy.items())
    assert len(again) == len(expected) + len(copy)


def test_ray_engine_flags_need_what_they_go_with(tmp_path):
    done = emolens("predict", ASTRONAUT, "--engine", "ray")
    assert done.returncode == 2 and "pass --out DIR" in done.stderr
    done = emolens("predict", ASTRONAUT, "--address", "auto")
    assert done.returncode == 2 and "--address is for --engine ray" in done.stderr
    done = emolens("predict", ASTRONAUT, "--engine", "ray", "--json", "--out", tmp_path)
    assert done.returncode == 2 and "--json, --explain and --formats are for the local engine" in done.stderr


def test_a_missing_ray_extra_is_a_one_line_error(monkeypatch, tmp_path):
    from emolens.errors import EmolensError
    from emolens.predict.ray_engine import predict_to_parquet

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(EmolensError, match=r'pip install "emolens\[ray\]"'):
        predict_to_parquet([ASTRONAUT], tmp_path)


def test_a_local_ray_s_workers_run_on_one_thread_without_a_runtime_environment(monkeypatch):
    import os

    import ray

    from emolens.predict.ray_engine import ACTOR_ENV, _start_ray

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    _start_ray(ray, None, 1)
    try:
        seen = ray.get(ray.remote(lambda: {name: os.environ.get(name) for name in ACTOR_ENV}).remote())
        assert not ray.get_runtime_context().runtime_env  # prestarted workers serve the job
    finally:
        ray.shutdown()
    assert seen == ACTOR_ENV
    assert os.environ["OMP_NUM_THREADS"] == "7" and "TF_CPP_MIN_LOG_LEVEL" not in os.environ  # the driver's, restored


# --- the driver streams: a listing held a chunk at a time, parts written by Ray's workers ---------------------


def test_the_listing_holds_a_chunk_of_records_at_a_time_and_skips_what_is_done(tmp_path, monkeypatch):
    import tracemalloc

    from emolens.predict import ray_engine
    from emolens.predict.ray_parts import DoneSources, ListingSource, PartSink

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(4):
        (photos / f"{index}.png").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    sink = PartSink(out, list(PROBABILITIES))
    sink.on_write_complete(
        type("WriteResult", (), {"write_returns": [sink.write([pq_table(["photos/0.png", "photos/1.png"])], None)]})()
    )
    assert (sink.rows, sink.parts, sink.errors) == (2, 1, 1)
    done = DoneSources(out)
    assert len(done) == 2 and "photos/1.png" in done and "photos/2.png" not in done

    monkeypatch.setattr(ray_engine, "LISTING_ROWS", 100)
    peaks = {}
    for lines in (1000, 4000):
        listing_file = tmp_path / f"list{lines}.txt"
        listing_file.write_text("".join(f"photos/{index % 4}.png\n" for index in range(lines)))
        monkeypatch.chdir(tmp_path)
        listing = ray_engine._Listing(tmp_path / f"inputs{lines}.parquet")
        tracemalloc.start()
        listing.write(listing_file.relative_to(tmp_path), done, every=1)
        peaks[lines] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert (listing.inputs, listing.skipped, listing.pictures) == (lines // 2, lines // 2, lines // 2)
        blocks = [block for task in ListingSource(listing.path, 300).get_read_tasks(1) for block in task()]
        assert [block.num_rows for block in blocks][:4] == [100, 100, 100, 100] and sum(
            block.num_rows for block in blocks
        ) == lines // 2
        assert {row["path"] for row in blocks[0].to_pylist()} == {"photos/2.png", "photos/3.png"}
    # 1,500 more records held at once would take about 1 MB more; a chunk at a time, the peak hardly moves.
    assert peaks[4000] - peaks[1000] < 200_000, peaks


def pq_table(sources: list[str]):
    """Rows as an actor returns them: the first a face, the rest unreadable inputs."""
    import pyarrow as pa

    from emolens.predict.ray_parts import part_schema

    rows = [
        {"source": source, "name": source, "error": None if i == 0 else "not read"} for i, source in enumerate(sources)
    ]
    return pa.Table.from_pylist(rows, schema=part_schema(list(PROBABILITIES)))
