"""Labels files: votes or one class per image, keyed by path, replacing the folders' labels."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_tree
from emolens.data import load_dataset
from emolens.data.labels import canonical_class, clear_majority, parse_labels, read_labels
from emolens.errors import EmolensError

FERPLUS_HEADER = "path,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF,ferplus_rows\n"


def ferplus_row(path: str, **votes: int) -> str:
    columns = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
    return ",".join([path, *(str(votes.get(c, 0)) for c in columns), "1"]) + "\n"


@pytest.fixture
def faces(tmp_path):
    """A zip-like tree under one top folder: train/{angry,happy,sad}/00{0..3}.png and test/.../00{0,1}.png."""
    return write_tree(tmp_path / "faces" / "top", {"train": 4, "test": 2})


def test_ferplus_columns_map_onto_emolens_classes_and_contempt_is_an_eighth():
    labels = parse_labels(FERPLUS_HEADER + ferplus_row("a.jpg", happiness=6, contempt=2, neutral=2), "f.csv")
    assert labels.class_names == ("angry", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert labels.soft and np.allclose(labels.votes[0], [0, 0.2, 0, 0, 0.6, 0.2, 0, 0])
    assert [canonical_class(c) for c in ("Anger", "SADNESS", "surprised")] == ["angry", "sad", "surprise"]


def test_unknown_and_not_a_face_votes_leave_the_distribution_and_top_ones_leave_the_face_out():
    text = FERPLUS_HEADER + ferplus_row("kept.jpg", happiness=6, unknown=4) + ferplus_row("nf.jpg", happiness=3, NF=7)
    text += ferplus_row("tie.jpg", anger=4, unknown=4) + ferplus_row("none.jpg", unknown=10)
    labels = parse_labels(text, "f.csv")
    assert labels.paths == ("kept.jpg",) and labels.left_out == ("nf.jpg", "tie.jpg", "none.jpg")
    assert labels.votes[0][labels.class_names.index("happy")] == 1.0  # the 4 unknown votes are dropped


def test_a_labels_file_of_one_class_per_image_reads_as_one_vote():
    labels = parse_labels("file,label\na.jpg,Happiness\nb.jpg,anger\nc.jpg,\n", "l.csv")
    assert not labels.soft and labels.class_names == ("angry", "happy")
    assert labels.votes.tolist() == [[0, 1], [1, 0]] and labels.left_out == ("c.jpg",)


@pytest.mark.parametrize(
    "text, message",
    [
        ("path\na.jpg\n", "no label or class columns"),
        ("path,happy,sad\na.jpg,1,x\n", "not a number"),
        ("path,happy,sad\na.jpg,1,-2\n", "negative"),
        ("path,happy,sad\na.jpg,1,2\na.jpg,2,1\n", "more than once"),
        ("path,happy,happiness\na.jpg,1,2\n", "two columns for one class"),
        ("path,happy,sad\na.jpg,1\n", "different number of fields"),
    ],
)
def test_bad_labels_files_are_one_line_errors(text, message):
    with pytest.raises(EmolensError, match=message):
        parse_labels(text, "bad.csv")


def test_a_missing_labels_file_says_so(tmp_path, faces):
    with pytest.raises(EmolensError, match="cannot read the labels file"):
        load_dataset(faces, labels=tmp_path / "absent.csv")


def test_load_dataset_relabels_by_path_counts_what_it_leaves_out_and_keeps_the_folder_label(tmp_path, faces):
    # Keyed with the top folder, as FER+'s file keys fer2013/train/...: the source strips it, the match still holds.
    rows = [ferplus_row(f"top/train/happy/00{i}.png", sadness=7, happiness=3) for i in range(4)]
    rows += [ferplus_row(f"top/train/sad/00{i}.png", sadness=9, surprise=1) for i in range(4)]
    rows += [ferplus_row(f"top/train/angry/00{i}.png", anger=5, fear=5) for i in range(3)]  # 003 not covered
    rows += [ferplus_row(f"top/test/{c}/00{i}.png", anger=8, NF=2) for c in ("angry", "happy") for i in range(2)]
    rows += [ferplus_row(f"top/test/sad/00{i}.png", unknown=10) for i in range(2)]
    votes = tmp_path / "votes.csv"
    votes.write_text(FERPLUS_HEADER + "".join(rows))
    dataset = load_dataset(faces.parent, labels=votes)
    train, test = dataset.split("train"), dataset.split("test")
    assert len(dataset.class_names) == 8 and dataset.labels_file == str(votes)
    happy, sad, angry = (dataset.class_names.index(c) for c in ("happy", "sad", "angry"))
    assert len(train) == 11 and train.votes.shape == (11, 8)
    assert (train.labels[[n.startswith("train/happy") for n in train.names]] == sad).all()  # the votes' majority
    assert (train.source_labels[[n.startswith("train/happy") for n in train.names]] == happy).all()  # the folder's
    assert clear_majority(train.votes).sum() == 8  # the 3 angry/fear ties stay for training, out of accuracy
    assert len(test) == 4 and (test.labels == angry).all()
    assert dataset.labelling == {
        "train": {"not in the labels file": 1},
        "test": {"top vote not an emotion (unknown or not a face)": 2},
    }
    reasons = {s.name: s.reason for s in dataset.skipped}
    assert reasons["train/angry/003.png"].startswith("not in the labels file") and "test/sad/000.png" in reasons


def test_a_labels_file_that_covers_none_of_a_split_is_an_error(tmp_path, faces):
    votes = tmp_path / "votes.csv"
    votes.write_text(FERPLUS_HEADER + ferplus_row("elsewhere/x.png", happiness=10))
    with pytest.raises(EmolensError, match="covers none of the train images"):
        load_dataset(faces.parent, labels=votes)


def test_the_shared_ferplus_votes_label_the_shared_fer2013_zip(shared_dir):
    labels = read_labels(shared_dir / "data" / "fer2013-ferplus.csv")
    assert len(labels.paths) + len(labels.left_out) == 32139 and len(labels.class_names) == 8


def test_inspect_reports_how_often_the_folders_agree_with_the_votes(tmp_path, faces):
    from emolens.data.inspection import inspect_dataset

    # happy/ faces voted sad, sad/ faces voted sad, angry/ faces voted angry (one tied): 8 of 12 folder labels agree.
    rows = [ferplus_row(f"train/happy/00{i}.png", sadness=7, happiness=3) for i in range(4)]
    rows += [
        ferplus_row(f"train/{c}/00{i}.png", **{"sadness" if c == "sad" else "anger": 9, "neutral": 1})
        for c in ("sad", "angry")
        for i in range(4)
    ]
    rows[-1] = ferplus_row("train/angry/003.png", anger=5, neutral=5)
    rows += [ferplus_row(f"test/{c}/00{i}.png", neutral=10) for c in ("angry", "happy", "sad") for i in range(2)]
    votes = tmp_path / "votes.csv"
    votes.write_text(FERPLUS_HEADER + "".join(rows))
    report = inspect_dataset(load_dataset(faces.parent, labels=votes))
    assert report.labels["train"] == {
        "labelled": 12,
        "left_out": {},
        "tied": 1,
        "folder_agrees_with_majority": 7 / 11,
        "compared": 11,
    }
    assert report.labels["test"]["folder_agrees_with_majority"] == 0.0
    assert any("agree with the votes' majority on only 64%" in line for line in report.verdict())
    assert report.to_dict()["labels"] == report.labels
    assert inspect_dataset(load_dataset(faces.parent)).labels == {}
