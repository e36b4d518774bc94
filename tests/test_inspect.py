"""`emolens data inspect`: a small dataset with planted problems, each found, and nothing else flagged."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import CLASSES, png_bytes
from emolens.cli import main
from emolens.data import load_dataset
from emolens.data.inspection import clean_dataset, hamming_pairs, inspect_dataset, perceptual_hashes, write_cleaned_copy


def textured(seed: int, size: int = 48) -> np.ndarray:
    """A distinct smooth random picture (a 6x6 grid of random levels, bicubically enlarged): no two look alike."""
    from PIL import Image

    coarse = np.random.default_rng(seed).uniform(30, 225, (6, 6)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))


def write(path: Path, pixels: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(pixels, mode))


# Planted problems: file -> what it is.
EXACT_SAME_LABEL = ("train/happy/000.png", "train/happy/copy.png")
EXACT_CONFLICT = ("train/angry/001.png", "train/sad/conflict.png")
EXACT_LEAK = ("test/angry/000.png", "train/angry/leak.png")
NEAR = ("train/sad/002.png", "train/sad/near.png")
MIRROR_LEAK = ("test/happy/001.png", "train/happy/mirror.png")


@pytest.fixture
def planted(tmp_path):
    """Clean distinct images (5 train and 3 test per class) plus one of each problem."""
    root = tmp_path / "data"
    seed = 0
    for split, count in (("train", 5), ("test", 3)):
        for name in CLASSES:
            for i in range(count):
                seed += 1
                write(root / split / name / f"{i:03d}.png", textured(seed))

    def read(name: str) -> np.ndarray:
        from PIL import Image

        return np.asarray(Image.open(root / name))

    write(root / EXACT_SAME_LABEL[1], read(EXACT_SAME_LABEL[0]))
    write(root / EXACT_CONFLICT[1], read(EXACT_CONFLICT[0]))
    write(root / EXACT_LEAK[1], read(EXACT_LEAK[0]))
    shifted = read(NEAR[0]).astype(np.int16) + 6 + np.random.default_rng(99).integers(-3, 4, (48, 48))
    write(root / NEAR[1], np.clip(shifted, 0, 255).astype(np.uint8))
    write(root / MIRROR_LEAK[1], read(MIRROR_LEAK[0])[:, ::-1].copy())
    write(root / "train/angry/blank.png", np.zeros((48, 48), np.uint8))
    write(root / "test/sad/gray.png", np.full((48, 48), 128, np.uint8))
    # Two faint pages with the same faint texture: alike in pHash, but flat images are reported as such, not paired.
    texture = (textured(7).astype(np.float64) - 128) / 25
    for name, seed in (("train/happy/faint.png", 5), ("test/angry/faint.png", 6)):
        page = np.round(200 + texture).astype(np.uint8)
        page[seed, :10] += 1  # not pixel-identical
        write(root / name, page)
    (root / "train/happy/corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    colour = np.stack([textured(500, 64)] * 3, axis=-1)
    write(root / "train/sad/colour.png", colour, "RGB")
    return root


def files(refs) -> set[str]:
    return {ref.name for ref in refs}


def group_files(groups) -> set[frozenset[str]]:
    return {frozenset(m.name for m in g.members) for g in groups}


def test_exactly_the_planted_problems_are_found(planted):
    report = inspect_dataset(load_dataset(planted), near=True)
    assert group_files(report.exact) == {frozenset(EXACT_SAME_LABEL), frozenset(EXACT_CONFLICT), frozenset(EXACT_LEAK)}
    by_files = {frozenset(m.name for m in g.members): g for g in report.exact}
    assert by_files[frozenset(EXACT_CONFLICT)].conflicting_labels and not by_files[frozenset(EXACT_SAME_LABEL)].conflicting_labels
    assert by_files[frozenset(EXACT_LEAK)].across_splits and by_files[frozenset(EXACT_LEAK)].splits == ["test", "train"]
    assert group_files(report.near) == {frozenset(NEAR), frozenset(MIRROR_LEAK)}
    by_files = {frozenset(m.name for m in g.members): g for g in report.near}
    assert by_files[frozenset(MIRROR_LEAK)].mirrored and by_files[frozenset(MIRROR_LEAK)].across_splits
    assert not by_files[frozenset(NEAR)].mirrored
    assert files(report.blank) == {"train/angry/blank.png", "test/sad/gray.png"}
    assert files(report.near_constant) == {"train/happy/faint.png", "test/angry/faint.png"}
    assert [s.name for s in report.unreadable] == ["train/happy/corrupt.png"]
    assert [(ref.name, fmt) for ref, fmt in report.converted] == [("train/sad/colour.png", "64x64 RGB")]


def test_near_duplicates_are_only_searched_when_asked(planted):
    report = inspect_dataset(load_dataset(planted))
    assert report.near is None and report.summary()["exact_groups"] == 3 and "near_groups" not in report.summary()
    assert any("--near" in line for line in report.verdict())


def test_a_clean_dataset_gets_a_clean_verdict(tmp_path):
    for split, count in (("train", 4), ("test", 2)):
        for label, name in enumerate(CLASSES):
            for i in range(count):
                write(tmp_path / split / name / f"{i}.png", textured(100 * label + 10 * (split == "test") + i))
    report = inspect_dataset(load_dataset(tmp_path), near=True)
    assert report.verdict() == ["No problems found."] and report.duplicate_sets() == []


def test_cleaning_drops_blanks_train_copies_and_conflicts_but_never_a_test_image(planted):
    dataset = load_dataset(planted)
    cleaned, removed = clean_dataset(dataset, inspect_dataset(dataset, near=True))
    reasons = {ref.name: reason for ref, reason in removed}
    assert reasons == {
        "train/angry/blank.png": "blank",
        "test/sad/gray.png": "blank",
        "train/happy/faint.png": "near-constant",
        "test/angry/faint.png": "near-constant",
        "train/happy/copy.png": "duplicate within train",
        "train/angry/001.png": "duplicates with conflicting labels",
        "train/sad/conflict.png": "duplicates with conflicting labels",
        "train/angry/leak.png": "duplicate of a test image",
        "train/sad/near.png": "near duplicate within train",
        "train/happy/mirror.png": "near duplicate of a test image",
    }
    kept = set(cleaned.split("train").names) | set(cleaned.split("test").names)
    assert not kept & set(reasons) and {EXACT_LEAK[0], MIRROR_LEAK[0], EXACT_SAME_LABEL[0], NEAR[0]} <= kept
    assert len(cleaned.split("test")) == len(dataset.split("test")) - 2


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode() + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


def test_fix_writes_a_cleaned_copy_that_loads_and_leaves_the_input_alone(planted, tmp_path):
    before = tree_digest(planted)
    assert main(["data", "inspect", str(planted), "--fix", str(tmp_path / "clean")]) == 0
    assert tree_digest(planted) == before
    copy = load_dataset(tmp_path / "clean", cache=False)
    with open(tmp_path / "clean" / "removed.csv", newline="") as file:
        removed = {row["file"]: row["reason"] for row in csv.DictReader(file)}
    # The default inspection is exact only, so the near copy and the mirror image stay.
    assert set(removed) == {
        "train/angry/blank.png", "test/sad/gray.png", "train/happy/faint.png", "test/angry/faint.png", "train/happy/copy.png",
        "train/angry/001.png", "train/sad/conflict.png", "train/angry/leak.png",
    }  # fmt: skip
    assert "train/sad/near.png" in copy.split("train").names and "train/sad/colour.png" in copy.split("train").names
    assert inspect_dataset(copy).duplicate_sets() == [] and not copy.skipped
    assert len(copy.split("train")) == len(load_dataset(planted).split("train")) - 6


def test_fix_refuses_a_folder_that_is_not_empty(planted, tmp_path, capsys):
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "keep.txt").write_text("mine")
    assert main(["data", "inspect", str(planted), "--fix", str(tmp_path / "clean")]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "clean" / "keep.txt").read_text() == "mine"


def test_fix_refuses_to_write_inside_the_dataset(planted, capsys):
    before = tree_digest(planted)
    assert main(["data", "inspect", str(planted), "--fix", str(planted / "clean")]) == 2
    assert "inside the dataset" in capsys.readouterr().err and tree_digest(planted) == before


def test_json_lists_every_group_with_its_files(planted, capsys):
    assert main(["data", "inspect", str(planted), "--near", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["exact_groups"] == 3 and report["summary"]["near_groups"] == 2
    assert report["near_threshold"] == 4 and report["imbalance"]["train"] == round(8 / 7, 2)  # happy and sad 8, angry 7
    leak = next(g for g in report["exact_duplicates"] if g["across_splits"])
    assert [f["file"] for f in leak["files"]] == list(EXACT_LEAK) and leak["kind"] == "exact"
    assert report["not_48x48_gray"] == [{"split": "train", "file": "train/sad/colour.png", "label": "sad", "format": "64x64 RGB"}]


def test_out_writes_the_report_and_pictures(planted, tmp_path, capsys):
    assert main(["data", "inspect", str(planted), "--near", "--out", str(tmp_path / "report")]) == 0
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"report.json", "class_counts.png", "duplicates.png"}
    out = capsys.readouterr().out
    assert "Verdict" in out and "span splits" in out


def test_csv_rows_are_named_by_row_in_a_cleaned_copy(tmp_path):
    pixels = [" ".join(map(str, textured(seed).ravel())) for seed in range(4)]
    rows = [(0, pixels[0]), (3, pixels[1]), (3, pixels[1]), (4, pixels[2]), (0, pixels[3])]
    with open(tmp_path / "fer.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["emotion", "pixels", "Usage"])
        writer.writerows([emotion, row, "Training"] for emotion, row in rows)
    dataset = load_dataset(tmp_path / "fer.csv")
    report = inspect_dataset(dataset)
    assert group_files(report.exact) == {frozenset({"fer.csv:3", "fer.csv:4"})}
    write_cleaned_copy(dataset, report, tmp_path / "clean")
    assert sorted(p.name for p in (tmp_path / "clean" / "train" / "happy").iterdir()) == ["row-3.png"]


def test_hamming_pairs_match_a_brute_force_search():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 400, dtype=np.uint64)
    # Close relatives: a few bits flipped.
    hashes[200:] = hashes[:200] ^ (np.uint64(1) << rng.integers(0, 64, 200).astype(np.uint64))
    for threshold in (0, 2, 4):
        distances = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
        expected = {(i, j) for i, j in zip(*np.nonzero(distances <= threshold)) if i < j}
        assert {tuple(p) for p in hamming_pairs(hashes, hashes, threshold, same=True).tolist()} == expected


def test_a_mirror_image_hash_is_the_hash_of_the_mirrored_image():
    images = np.stack([textured(seed) for seed in range(5)])
    _, mirrored = perceptual_hashes(images)
    direct_of_flipped, _ = perceptual_hashes(images[:, :, ::-1].copy())
    np.testing.assert_array_equal(mirrored, direct_of_flipped)


@pytest.mark.slow
def test_train_dedupe_trains_on_what_fix_would_keep(planted, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(planted), "--dedupe", "--epochs", "1", "--batch-size", "8", "--val-split", "0.3", "--out", str(run)]
    assert main(args) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["dedupe"] == "exact" and saved["data"]["dedupe_removed"] == 8
    with open(run / "removed.csv", newline="") as file:
        removed = {row["file"] for row in csv.DictReader(file)}
    assert EXACT_LEAK[1] in removed and EXACT_LEAK[0] not in removed and len(removed) == 8
    # 15 clean and 8 planted readable train images, less the 6 train images left out.
    assert saved["data"]["train_images"] + saved["data"]["val_images"] == 15 + 8 - 6


def test_dedupe_near_also_leaves_out_near_copies_and_mirror_images(planted):
    from emolens.train import TrainConfig
    from emolens.train.trainer import _prepare_splits

    dataset = load_dataset(planted)
    train, val, removed = _prepare_splits(dataset, TrainConfig(dedupe="near", val_split=0.3))
    names = {ref.name for ref, _ in removed}
    assert len(names) == 10 and {NEAR[1], MIRROR_LEAK[1]} <= names
    assert not names & (set(train.names) | set(val.names))
    assert _prepare_splits(dataset, TrainConfig(val_split=0.3))[2] == []
