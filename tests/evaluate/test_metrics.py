import dataclasses

import numpy as np
import pytest

from emolens.evaluate.metrics import compute_metrics

NAMES = ["angry", "happy", "sad"]


def test_hand_computed_example():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    metrics = compute_metrics(y_true, y_pred, NAMES)
    assert metrics["num_images"] == 6
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    angry = metrics["per_class"]["angry"]
    assert (angry["precision"], angry["recall"], angry["support"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert metrics["per_class"]["sad"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # F1: angry 2/3, happy 0.8, sad 0 -> macro over the three present classes
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)


def test_classes_absent_from_the_data_still_get_rows():
    metrics = compute_metrics(np.array([0, 0]), np.array([0, 0]), NAMES)
    assert metrics["per_class"]["sad"]["support"] == 0
    assert metrics["confusion_matrix"] == [[2, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert metrics["macro_f1"] == 1.0


def test_text_face_is_scikit_learns_report():
    text = compute_metrics(np.array([0, 1, 2]), np.array([0, 1, 1]), NAMES, output_dict=False)
    assert "precision" in text and all(name in text for name in NAMES) and "0.6667" in text


def test_an_evaluation_is_typed_and_its_dict_holds_only_what_was_measured():
    from emolens.evaluate import Evaluation

    evaluation = Evaluation(
        model="seed",
        model_path="run/model.keras",
        data="faces",
        split="test",
        test_time_augmentation="none",
        num_images=2,
        accuracy=0.5,
        macro_f1=0.33,
        class_names=["angry", "happy"],
        per_class={"angry": {"recall": 1.0}, "happy": {"recall": 0.0}},
        confusion_matrix=[[1, 0], [1, 0]],
        left_out={},
        classes={"never_predicted": ["happy"]},
        calibration={"temperature": None},
        sharpness={"training": None, "evaluated": 3.0},
    )
    plain = evaluation.to_dict()
    assert plain["accuracy"] == 0.5 and plain["per_class"]["angry"]["recall"] == 1.0
    assert not {"labels", "agreement", "source_label", "report"} & set(plain)
    voted = dataclasses.replace(evaluation, agreement={"vote_share": 0.4}, report="out/report.html")
    assert voted.to_dict()["agreement"] == {"vote_share": 0.4} and voted.to_dict()["report"] == "out/report.html"
