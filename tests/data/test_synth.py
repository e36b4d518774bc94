from pathlib import Path

import numpy as np
import pytest

from emolens.constants import FER2013_CLASSES, IMAGE_SIZE
from emolens.data.synth import draw_face, synthesize_dataset


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.mark.parametrize("emotion", FER2013_CLASSES)
def test_draw_face_every_class_is_a_uint8_square(emotion):
    face = draw_face(emotion, np.random.default_rng(0))
    assert face.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert face.dtype == np.uint8
    assert face.std() > 10  # a drawn face, not a flat or empty image


def test_draw_face_honours_size_and_seed():
    assert draw_face("happy", np.random.default_rng(0), size=64).shape == (64, 64)
    a = draw_face("sad", np.random.default_rng(7))
    b = draw_face("sad", np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_draw_face_rejects_an_unknown_emotion():
    with pytest.raises(ValueError, match=r"one of .*'happy'.*Received: emotion='joy'"):
        draw_face("joy", np.random.default_rng(0))


def test_synthesize_dataset_writes_the_fer2013_layout(tmp_path):
    root = synthesize_dataset(tmp_path / "synth", train_per_class=3, test_per_class=2)
    assert root == tmp_path / "synth"
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    for split, count in (("train", 3), ("test", 2)):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(FER2013_CLASSES)
        for emotion in FER2013_CLASSES:
            names = sorted(p.name for p in (root / split / emotion).iterdir())
            assert names == [f"{emotion}_{i:05d}.png" for i in range(count)]


def test_synthesize_dataset_is_deterministic_per_seed(tmp_path):
    first = tree_bytes(synthesize_dataset(tmp_path / "a", train_per_class=2, test_per_class=1, seed=3))
    again = tree_bytes(synthesize_dataset(tmp_path / "b", train_per_class=2, test_per_class=1, seed=3))
    other = tree_bytes(synthesize_dataset(tmp_path / "c", train_per_class=2, test_per_class=1, seed=4))
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)
    # Train and test draw from separate streams, so the test split never repeats a training image.
    assert first["train/happy/happy_00000.png"] != first["test/happy/happy_00000.png"]


@pytest.mark.parametrize("existing", ["train", "test"])
def test_synthesize_dataset_refuses_a_folder_that_already_has_a_split(tmp_path, existing):
    (tmp_path / existing).mkdir()
    (tmp_path / existing / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="empty"):
        synthesize_dataset(tmp_path, train_per_class=1, test_per_class=1)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [existing, f"{existing}/keep.txt"]


def test_synthesize_dataset_accepts_a_folder_with_unrelated_files(tmp_path):
    (tmp_path / "README.txt").write_text("notes")
    synthesize_dataset(tmp_path, train_per_class=1, test_per_class=1)
    assert (tmp_path / "train" / "angry" / "angry_00000.png").is_file()


@pytest.mark.parametrize(
    "counts",
    [{"train_per_class": 0}, {"test_per_class": -1}, {"train_per_class": 1.5}, {"test_per_class": True}, {"seed": -1}],
)
def test_synthesize_dataset_validates_arguments_before_writing(tmp_path, counts):
    with pytest.raises(ValueError, match=next(iter(counts))):
        synthesize_dataset(tmp_path / "out", **counts)
    assert not (tmp_path / "out").exists()


def test_classes_are_linearly_separable_beyond_chance():
    # A closed-form ridge classifier on raw pixels must clearly beat chance (1/7) on held-out faces;
    # it would sit near 1/7 if every class were drawn the same way. The nuisance (pose, lighting,
    # noise) keeps a linear model on this few images well below perfect, so the bar is 2x chance.
    rng = np.random.default_rng(0)

    def batch(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        faces = [draw_face(emotion, rng) for emotion in FER2013_CLASSES for _ in range(per_class)]
        x = np.asarray(faces, dtype=np.float64).reshape(len(faces), -1)
        x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)  # undo brightness/contrast
        return x, np.repeat(np.arange(len(FER2013_CLASSES)), per_class)

    x_train, y_train = batch(60)
    x_test, y_test = batch(20)
    mean = x_train.mean(0)
    x_train, x_test = x_train - mean, x_test - mean
    targets = np.eye(len(FER2013_CLASSES))[y_train]
    weights = x_train.T @ np.linalg.solve(x_train @ x_train.T + 100.0 * np.eye(len(x_train)), targets)
    accuracy = float(((x_test @ weights).argmax(1) == y_test).mean())
    assert accuracy > 2 / len(FER2013_CLASSES), accuracy
