"""MixUp and CutMix batches: what they blend, in what proportion, and that a resumed run mixes the same."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from emolens.train.mixing import MixedBatches

CLASSES = 3


def data(count: int = 32):
    # Each image is flat at a level that names it, so a mixed pixel tells which images it came from.
    images = np.repeat(np.linspace(0.0, 1.0, count, dtype=np.float32)[:, None, None, None], 48 * 48, axis=1).reshape(
        count, 48, 48, 1
    )
    labels = keras.utils.to_categorical(np.arange(count) % CLASSES, CLASSES).astype("float32")
    return images, labels


def batches(**options):
    images, labels = data()
    settings = {"batch_size": 8, "mixup": 0.0, "cutmix": 0.0, "class_weights": None, "seed": 0} | options
    return MixedBatches(images, labels, **settings)


def test_mixup_blends_whole_images_and_labels_in_one_proportion():
    x, y, w = batches(mixup=0.4)[0]
    assert x.shape == (8, 48, 48, 1) and y.shape == (8, CLASSES) and w.shape == (8,)
    assert np.allclose(x, x[:, :1, :1])  # still flat: blended as a whole
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert (y.max(axis=1) < 1).any()  # some labels are really mixed
    np.testing.assert_allclose(w, 1.0)


def test_cutmix_pastes_one_rectangle_and_labels_follow_its_area():
    images, labels = data()
    mixed = MixedBatches(images, labels, batch_size=8, mixup=0.0, cutmix=1.0, class_weights=None, seed=3)
    x, y, _ = mixed[1]
    rows = mixed.order[8:16]
    for image, original, label in zip(x[..., 0], images[rows][..., 0], y, strict=True):
        changed = np.abs(image - original) > 1e-6
        if changed.any():
            r, c = np.nonzero(changed)
            assert changed.sum() == (r.max() - r.min() + 1) * (c.max() - c.min() + 1)  # one full rectangle
            kept = 1 - changed.sum() / changed.size
            assert label.max() >= kept - 1e-6  # the original's share is at least the area kept
        np.testing.assert_allclose(label.sum(), 1.0, rtol=1e-6)


def test_class_weights_mix_with_the_labels():
    weights = {0: 1.0, 1: 2.0, 2: 4.0}
    images, labels = data()
    _, y, w = MixedBatches(images, labels, batch_size=8, mixup=0.4, cutmix=0.0, class_weights=weights, seed=0)[0]
    np.testing.assert_allclose(w, y @ np.array([1.0, 2.0, 4.0], np.float32), rtol=1e-5)


def test_a_resumed_run_gets_the_same_batches():
    uninterrupted = batches(mixup=0.2, cutmix=1.0)
    for _ in range(3):
        uninterrupted.on_epoch_end()
    resumed = batches(mixup=0.2, cutmix=1.0, epoch=3)
    for index in range(len(resumed)):
        for a, b in zip(uninterrupted[index], resumed[index], strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(batches(mixup=0.2)[0][0], batches(mixup=0.2, epoch=1)[0][0])  # epochs differ


def test_every_image_appears_once_per_epoch_as_an_original():
    mixed = batches(mixup=0.2)
    assert len(mixed) == 4 and sorted(mixed.order.tolist()) == list(range(32))


def test_nothing_to_mix_is_refused():
    with pytest.raises(ValueError, match="mixup > 0 or cutmix > 0"):
        batches()


@pytest.mark.slow
def test_training_with_mixup_and_cutmix_runs_and_resumes(tmp_path):
    from conftest import argv, write_tree
    from emolens.cli import main
    from emolens.models.saving import read_card

    data_dir = write_tree(tmp_path / "data", {"train": 8, "test": 2})
    run = tmp_path / "run"
    args = argv(
        "train {data_dir} --model mini_resnet --mixup 0.2 --cutmix 1.0 --class-weight sqrt --epochs 1 --batch-size 8 --out {run}",
        data_dir=data_dir,
        run=run,
    )
    assert main(args) == 0
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert read_card(run / "last.keras")["training_state"]["epochs_done"] == 2
    assert main(["train", str(data_dir), "--mixup", "-1", "--out", str(tmp_path / "bad")]) == 2
