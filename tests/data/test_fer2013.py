"""The real FER2013 archive from ../shared, when it is there: the loader reads exactly what its README says."""

from emolens.data import load_dataset

TRAIN = {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "neutral": 4965, "sad": 4830, "surprise": 3171}
TEST = {"angry": 467, "disgust": 56, "fear": 496, "happy": 895, "neutral": 607, "sad": 653, "surprise": 415}


def test_fer2013_zip_counts(shared_dir):
    dataset = load_dataset(shared_dir / "data" / "fer2013.zip")
    assert dataset.counts() == {"train": TRAIN, "test": TEST}
    assert dataset.skipped == ()
    assert dataset.split("train").images.shape == (28709, 48, 48)
