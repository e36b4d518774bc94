import csv
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import CLASSES, class_image, png_bytes, write_tree
from emolens.constants import FER2013_CSV_CLASSES
from emolens.data import load_dataset
from emolens.errors import EmolensError


def zip_tree(tree: Path, archive: Path, *, top: str | None) -> Path:
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(tree.rglob("*")):
            relative = path.relative_to(tree).as_posix()
            name = f"{top}/{relative}" if top else relative
            if path.is_dir():
                z.writestr(name + "/", b"")
            else:
                z.write(path, name)
    return archive


def assert_small_dataset(dataset, train=4, test=2):
    assert dataset.class_names == CLASSES
    assert set(dataset.splits) == {"train", "test"}
    assert dataset.counts() == {"train": {c: train for c in CLASSES}, "test": {c: test for c in CLASSES}}
    split = dataset.split("train")
    assert split.images.shape == (3 * train, 48, 48) and split.images.dtype == np.uint8
    for image, label, name in zip(split.images, split.labels, split.names, strict=True):
        index = int(Path(name).stem)
        np.testing.assert_array_equal(image, class_image(int(label), index))
        assert f"/{CLASSES[label]}/" in f"/{name}"


def test_folder(tmp_path):
    dataset = load_dataset(write_tree(tmp_path / "fer", {"train": 4, "test": 2}))
    assert_small_dataset(dataset)
    assert dataset.skipped == ()


@pytest.mark.parametrize("top", [None, "fer2013"])
def test_zip_with_and_without_top_folder(tmp_path, top):
    tree = write_tree(tmp_path / "fer", {"train": 4, "test": 2})
    dataset = load_dataset(zip_tree(tree, tmp_path / "fer.zip", top=top))
    assert_small_dataset(dataset)


def test_zip_without_folder_entries(tmp_path):
    tree = write_tree(tmp_path / "fer", {"train": 4, "test": 2})
    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as z:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            z.write(path, "top/" + path.relative_to(tree).as_posix())
    assert_small_dataset(load_dataset(tmp_path / "flat.zip"))


def test_val_and_validation_folders_become_val(tmp_path):
    for alias in ("val", "validation"):
        root = write_tree(tmp_path / alias, {"train": 3, alias: 2, "test": 1})
        assert load_dataset(root).counts()["val"] == {c: 2 for c in CLASSES}


def test_bare_class_folder_is_one_split(tmp_path):
    root = write_tree(tmp_path / "x", {"test": 2}) / "test"
    dataset = load_dataset(root, bare_split="test")
    assert list(dataset.splits) == ["test"] and len(dataset.split("test")) == 6


def test_csv_usage_maps_to_splits_and_class_order(tmp_path):
    path = tmp_path / "fer2013.csv"
    rows = [(label, usage) for usage in ("Training", "PublicTest", "PrivateTest") for label in range(7)]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["emotion", "pixels", "Usage"])
        for label, usage in rows:
            writer.writerow([label, " ".join(str(label * 30 + (i % 7)) for i in range(48 * 48)), usage])
        writer.writerow([3, "1 2 3", "Training"])  # a short row: skipped, not fatal
    dataset = load_dataset(path)
    assert dataset.class_names == FER2013_CSV_CLASSES
    assert {s: len(dataset.splits[s]) for s in dataset.splits} == {"train": 7, "val": 7, "test": 7}
    train = dataset.split("train")
    assert train.labels.tolist() == list(range(7))
    assert train.images[4, 0, :3].tolist() == [120, 121, 122]
    assert len(dataset.skipped) == 1 and "2304" in dataset.skipped[0].reason


def test_corrupt_and_fake_images_are_skipped_and_listed(tmp_path):
    root = write_tree(tmp_path / "fer", {"train": 3, "test": 1})
    (root / "train" / "happy" / "notes.png").write_text("this is text, not a PNG")
    (root / "train" / "sad" / "broken.jpg").write_bytes(png_bytes(class_image(0, 0))[:30])
    dataset = load_dataset(root)
    assert dataset.counts()["train"] == {c: 3 for c in CLASSES}
    assert sorted(Path(s.name).name for s in dataset.skipped) == ["broken.jpg", "notes.png"]
    assert all("not a readable image" in s.reason for s in dataset.skipped)


def test_hidden_files_are_ignored(tmp_path):
    root = write_tree(tmp_path / "fer", {"train": 2, "test": 1})
    (root / "train" / "happy" / ".DS_Store").write_bytes(b"\x00\x01")
    assert load_dataset(root).skipped == ()


def test_zip_entry_escaping_the_archive_is_skipped_and_nothing_is_written(tmp_path, monkeypatch):
    tree = write_tree(tmp_path / "fer", {"train": 2, "test": 1})
    archive = zip_tree(tree, tmp_path / "evil.zip", top=None)
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("../../x", png_bytes(class_image(0, 0)))
        z.writestr("train/happy/../../../y.png", png_bytes(class_image(0, 0)))
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    dataset = load_dataset(archive, cache=False)
    assert dataset.counts()["train"] == {c: 2 for c in CLASSES}
    assert sorted(s.name for s in dataset.skipped) == ["../../x", "train/happy/../../../y.png"]
    assert all("unsafe path" in s.reason for s in dataset.skipped)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_empty_class_folder_is_an_error(tmp_path):
    root = write_tree(tmp_path / "fer", {"train": 2, "test": 1})
    (root / "test" / "sad" / "000.png").unlink()
    with pytest.raises(EmolensError, match=r"test/sad .*empty"):
        load_dataset(root)


def test_class_with_only_unreadable_files_is_an_error(tmp_path):
    root = write_tree(tmp_path / "fer", {"train": 2, "test": 1})
    (root / "test" / "sad" / "000.png").write_text("not an image")
    with pytest.raises(EmolensError, match=r"test/sad in .* has no readable images"):
        load_dataset(root)


def test_mismatched_classes_is_an_error(tmp_path):
    root = write_tree(tmp_path / "fer", {"train": 2})
    write_tree(root, {"test": 1}, classes=("angry", "happy", "surprise"))
    with pytest.raises(
        EmolensError, match=r"different class folders.*only in train: \['sad'\].*only in test: \['surprise'\]"
    ):
        load_dataset(root)


@pytest.mark.parametrize("name", ["missing", "data.txt", "not-a.zip"])
def test_bad_paths_are_errors(tmp_path, name):
    if name != "missing":
        (tmp_path / name).write_text("hello")
    with pytest.raises(EmolensError):
        load_dataset(tmp_path / name)


def test_missing_split_is_an_error(tmp_path):
    dataset = load_dataset(write_tree(tmp_path / "fer", {"train": 2}))
    with pytest.raises(EmolensError, match="no 'test' split"):
        dataset.split("test")


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    root = write_tree(tmp_path / "fer", {"train": 3, "test": 1})
    first = load_dataset(root)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr("emolens.data.cache.decode_listing", no_decoding)
    second = load_dataset(root)
    np.testing.assert_array_equal(first.split("train").images, second.split("train").images)
    assert first.fingerprint == second.fingerprint and first.split("train").names == second.split("train").names
    with pytest.raises(AssertionError):
        load_dataset(root, cache=False)


def test_changed_file_changes_the_fingerprint(tmp_path):
    root = write_tree(tmp_path / "fer", {"train": 3, "test": 1})
    first = load_dataset(root)
    (root / "train" / "sad" / "000.png").write_bytes(png_bytes(np.zeros((48, 48), np.uint8)))
    second = load_dataset(root)
    assert first.fingerprint != second.fingerprint
    train = second.split("train")
    assert train.images[train.names.index("train/sad/000.png")].max() == 0


def test_a_copied_zip_keeps_its_fingerprint(tmp_path):
    archive = zip_tree(write_tree(tmp_path / "fer", {"train": 2, "test": 1}), tmp_path / "fer.zip", top=None)
    first = load_dataset(archive, cache=False)
    copy = tmp_path / "copy.zip"
    copy.write_bytes(archive.read_bytes())
    os.utime(copy, (1, 1))
    second = load_dataset(copy, cache=False)
    assert first.fingerprint == second.fingerprint and first.content_digest() == second.content_digest()


def test_a_registered_source_kind_is_read_like_the_built_in_ones(tmp_path, monkeypatch):
    """ARCHITECTURE.md's promise: a new kind of source is one lister plus one `register_source`."""
    from emolens.data import sources
    from emolens.data.dataset import Dataset, SourceListing, split_arrays

    def decode_npz(listing, path, bare_split):
        with np.load(path) as arrays:
            items = [(f"{path.name}:{i}", image, "48x48 L") for i, image in enumerate(arrays["images"])]
            return Dataset(
                str(path),
                ("a", "b"),
                {bare_split: split_arrays(items, list(arrays["labels"]))},
                (),
                listing.fingerprint(),
            )

    monkeypatch.setattr(sources, "_KINDS", dict(sources._kinds()))  # the registration lasts this test only
    images = np.arange(2 * 48 * 48, dtype=np.uint8).reshape(2, 48, 48)
    np.savez(tmp_path / "faces.npz", images=images, labels=np.array([1, 0]))
    with pytest.raises(EmolensError, match="unknown kind of source"):
        load_dataset(tmp_path / "faces.npz", cache=False)

    @sources.register_source(".NPZ", description="a NumPy .npz")
    def list_npz(path):
        return SourceListing("npz", fingerprint_parts=[str(path.stat().st_size)], decode=decode_npz)

    assert sources.source_kinds().endswith(", or a NumPy .npz")  # help texts and errors name it
    dataset = load_dataset(tmp_path / "faces.npz", cache=False)
    assert dataset.class_names == ("a", "b") and dataset.split("train").labels.tolist() == [1, 0]
    np.testing.assert_array_equal(dataset.split("train").images, images)
