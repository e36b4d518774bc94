"""`emolens data inspect`: a small dataset with planted problems, each found, and nothing else flagged."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import CLASSES, argv, png_bytes
from emolens.cli import main
from emolens.data import load_dataset
from emolens.data.dataset import Dataset, Split
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
    assert (
        by_files[frozenset(EXACT_CONFLICT)].conflicting_labels
        and not by_files[frozenset(EXACT_SAME_LABEL)].conflicting_labels
    )
    assert by_files[frozenset(EXACT_LEAK)].across_splits and by_files[frozenset(EXACT_LEAK)].splits == ["test", "train"]
    assert group_files(report.near) == {frozenset(NEAR), frozenset(MIRROR_LEAK)}
    by_files = {frozenset(m.name for m in g.members): g for g in report.near}
    assert by_files[frozenset(MIRROR_LEAK)].mirrored and by_files[frozenset(MIRROR_LEAK)].across_splits
    assert not by_files[frozenset(NEAR)].mirrored
    assert files(report.blank) == {"train/angry/blank.png", "test/sad/gray.png"}
    assert files(report.near_constant) == {"train/happy/faint.png", "test/angry/faint.png"}
    assert [s.name for s in report.skipped] == ["train/happy/corrupt.png"]
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
        "train/angry/blank.png",
        "test/sad/gray.png",
        "train/happy/faint.png",
        "test/angry/faint.png",
        "train/happy/copy.png",
        "train/angry/001.png",
        "train/sad/conflict.png",
        "train/angry/leak.png",
    }
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
    assert report["not_48x48_gray"] == [
        {"split": "train", "file": "train/sad/colour.png", "label": "sad", "format": "64x64 RGB"}
    ]


def test_out_writes_the_report_and_pictures(planted, tmp_path, capsys):
    assert main(["data", "inspect", str(planted), "--near", "--out", str(tmp_path / "report")]) == 0
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"report.json", "class_counts.png", "duplicates.png"}
    out = capsys.readouterr().out
    assert "Verdict" in out and "copies of test images" in out


def test_a_csv_source_gets_a_cleaned_csv(tmp_path):
    pixels = [" ".join(map(str, textured(seed).ravel())) for seed in range(4)]
    rows = [(0, pixels[0]), (3, pixels[1]), (3, pixels[1]), (4, pixels[2]), (0, pixels[3])]
    with open(tmp_path / "FER.CSV", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["emotion", "pixels", "Usage"])
        writer.writerows([emotion, row, "Training"] for emotion, row in rows)
    (tmp_path / "FER.CSV").open("a").write("9,1 2 3,Training\n")  # a bad row
    dataset = load_dataset(tmp_path / "FER.CSV")
    report = inspect_dataset(dataset)
    assert group_files(report.exact) == {frozenset({"FER.CSV:3", "FER.CSV:4"})}
    assert [s.name for s in report.skipped] == ["FER.CSV:7"] and report.imbalance()["train"] is None
    assert report.missing_classes() == {"train": ["disgust", "fear", "surprise", "neutral"]}
    write_cleaned_copy(dataset, report, tmp_path / "clean")
    copy = load_dataset(tmp_path / "clean" / "FER.CSV", cache=False)
    np.testing.assert_array_equal(copy.split("train").images, np.delete(dataset.split("train").images, 2, axis=0))
    np.testing.assert_array_equal(copy.split("train").labels, [0, 3, 4, 0])


def test_near_threshold_zero_is_zero(planted, capsys):
    assert main(["data", "inspect", str(planted), "--near-threshold", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # The mirror image hashes exactly like its original; the brightened, noisy copy does not.
    assert report["near_threshold"] == 0
    assert [{f["file"] for f in g["files"]} for g in report["near_duplicates"]] == [set(MIRROR_LEAK)]


def test_a_threshold_out_of_range_is_a_one_line_error(planted, capsys):
    assert main(["data", "inspect", str(planted), "--near-threshold", "13"]) == 2
    assert "between 0 and 12" in capsys.readouterr().err


def test_a_dataset_of_flat_images(tmp_path, capsys):
    for split in ("train", "test"):
        for label, name in enumerate(CLASSES):
            write(tmp_path / "flat" / split / name / "0.png", np.full((48, 48), 60 * label, np.uint8))
            write(tmp_path / "flat" / split / name / "1.png", np.full((48, 48), 60 * label, np.uint8))
    report = inspect_dataset(load_dataset(tmp_path / "flat"), near=True)
    # Reported as blank, and not as duplicates or leaks of one another.
    assert len(report.blank) == 12 and report.exact == [] and report.near == []
    assert main(["data", "inspect", str(tmp_path / "flat"), "--near", "--fix", str(tmp_path / "clean")]) == 2
    assert "no images of" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat"]  # no copy, no half-built folder


def in_memory(splits: dict[str, list[tuple[np.ndarray, int]]]) -> Dataset:
    """A Dataset from (image, label) lists, named split/index.png."""
    built = {
        name: Split(
            np.stack([image for image, _ in items]),
            np.array([label for _, label in items]),
            tuple(f"{name}/{i}.png" for i in range(len(items))),
        )
        for name, items in splits.items()
    }
    return Dataset("memory", CLASSES, built)


def test_with_a_val_split_val_copies_of_test_and_train_copies_of_val_go():
    images = [textured(seed) for seed in range(30)]
    splits = {
        "train": [(images[i], i % 3) for i in range(9)] + [(images[20], 0)],  # train/9 copies val/3
        "val": [(images[10 + i], i % 3) for i in range(3)] + [(images[20], 0), (images[25], 1)],  # val/4 copies test/3
        "test": [(images[14 + i], i % 3) for i in range(3)] + [(images[25], 1)],
    }
    report = inspect_dataset(in_memory(splits))
    cleaned, removed = clean_dataset(in_memory(splits), report)
    assert {(ref.name, reason) for ref, reason in removed} == {
        ("train/9.png", "duplicate of a val image"),
        ("val/4.png", "duplicate of a test image"),
    }
    assert len(cleaned.split("test")) == 4 and len(cleaned.split("val")) == 4 and len(cleaned.split("train")) == 9
    verdict = " ".join(report.verdict())
    assert (
        "copies of test images" in verdict and "span train and val" in verdict and "within test or val" not in verdict
    )


def test_duplicates_inside_test_are_reported_but_left_alone():
    images = [textured(seed) for seed in range(10)]
    splits = {"train": [(images[i], i % 3) for i in range(6)], "test": [(images[6], 0), (images[6], 1), (images[7], 2)]}
    report = inspect_dataset(in_memory(splits))
    assert clean_dataset(in_memory(splits), report)[1] == []
    assert any("within test or val" in line for line in report.verdict())
    assert not any("in train carry different labels" in line for line in report.verdict())


def symmetric_image() -> np.ndarray:
    """A left-right symmetric picture whose low even frequencies are all positive.

    A symmetric image's odd horizontal frequencies are zero; with every other coefficient positive they all sit
    below the median, so its hash is stable and equals its mirror image's (an arbitrary symmetric image's
    zero coefficients would straddle the median and hash as noise).
    """
    k, n = np.arange(8)[:, None], np.arange(48)[None, :]
    inverse = np.linalg.pinv(np.cos(np.pi * (2 * n + 1) * k / 96))
    coefficients = np.zeros((8, 8))
    coefficients[:, ::2] = np.random.default_rng(1).uniform(1500, 3000, (8, 4))
    picture = inverse @ coefficients @ inverse.T
    return np.round(np.clip(128 + picture - picture.mean(), 0, 255)).astype(np.uint8)


def test_only_a_match_made_by_mirroring_marks_a_group_mirrored():
    images = [textured(seed) for seed in range(12)]
    symmetric = symmetric_image()
    brighter = np.clip(symmetric.astype(np.int16) + 5, 0, 255).astype(np.uint8)
    splits = {
        # A symmetric face and a brighter copy match directly and as mirror images: a near copy, not a mirror.
        "train": [(symmetric, 0), (brighter, 0)] + [(images[i], i % 3) for i in range(2, 8)],
        "test": [(images[8], 0), (images[9][:, ::-1].copy(), 1), (images[10], 2)],
    }
    splits["train"].append((images[9], 1))
    report = inspect_dataset(in_memory(splits), near=True)
    mirrored = {frozenset(m.name for m in g.members): g.mirrored for g in report.near}
    assert mirrored == {
        frozenset({"train/0.png", "train/1.png"}): False,
        frozenset({"test/1.png", "train/8.png"}): True,
    }


def test_hamming_pairs_match_a_brute_force_search():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 300, dtype=np.uint64) | (rng.integers(0, 2, 300, dtype=np.uint64) << np.uint64(63))
    # Close relatives: a few bits flipped, the top bit among them.
    for copies, flips in ((slice(100, 200), 1), (slice(200, 300), 5)):
        for _ in range(flips):
            bit = rng.integers(0, 64, 100).astype(np.uint64)
            bit[:10] = 63
            hashes[copies] = hashes[:100] ^ (np.uint64(1) << bit)
    distances = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    for threshold in (0, 1, 4, 7, 12):
        expected = {(i, j) for i, j in zip(*np.nonzero(distances <= threshold), strict=True) if i < j}
        found = hamming_pairs(hashes, hashes, threshold, same=True, chunk=64)
        assert {tuple(p) for p in found.tolist()} == expected, threshold
    queries = hashes[:50] ^ np.uint64(1 << 63)
    expected = {
        (i, j) for i, j in zip(*np.nonzero(np.bitwise_count(queries[:, None] ^ hashes[None, :]) <= 3), strict=True)
    }
    assert {tuple(p) for p in hamming_pairs(hashes, queries, 3, same=False).tolist()} == expected


def test_a_mirror_image_hash_is_the_hash_of_the_mirrored_image():
    images = np.stack([textured(seed) for seed in range(5)])
    _, mirrored = perceptual_hashes(images)
    direct_of_flipped, _ = perceptual_hashes(images[:, :, ::-1].copy())
    np.testing.assert_array_equal(mirrored, direct_of_flipped)


@pytest.mark.slow
def test_train_dedupe_trains_on_what_fix_would_keep(planted, tmp_path):
    run = tmp_path / "run"
    args = argv(
        "train {planted} --dedupe --epochs 1 --batch-size 8 --val-split 0.3 --out {run}", planted=planted, run=run
    )
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
    from emolens.train.data import prepare_splits

    dataset = load_dataset(planted)
    train, val, removed = prepare_splits(dataset, TrainConfig(dedupe="near", val_split=0.3))
    names = {ref.name for ref, _ in removed}
    assert len(names) == 10 and {NEAR[1], MIRROR_LEAK[1]} <= names
    assert not names & (set(train.names) | set(val.names))
    assert prepare_splits(dataset, TrainConfig(val_split=0.3))[2] == []
