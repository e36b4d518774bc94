"""Classification metrics from label arrays: plain data that reports, plots and JSON all read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


@overload
def compute_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], *, output_dict: Literal[True] = True
) -> dict[str, Any]: ...
@overload
def compute_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], *, output_dict: Literal[False]
) -> str: ...
def compute_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], *, output_dict: bool = True
) -> dict[str, Any] | str:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    One function, two faces (as scikit-learn's report): a dict for code, or the text table for people.

    Args:
        y_true: int array (N,). True class indices into class_names.
        y_pred: int array (N,). Predicted class indices.
        class_names: the names of the class indices, in order.
        output_dict: bool. True for the metrics dict, False for scikit-learn's classification report text.
            Defaults to True.

    Returns:
        A dict with accuracy, macro_f1, num_images, class_names, per_class and confusion_matrix (counts, rows =
        true class), or the report text.

    Examples:
        >>> metrics = compute_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), ["angry", "happy"])
        >>> round(metrics["accuracy"], 3), metrics["confusion_matrix"]
        (0.667, [[1, 0], [1, 1]])
    """
    labels = list(range(len(class_names)))
    if not output_dict:
        return classification_report(
            y_true, y_pred, labels=labels, target_names=list(class_names), digits=4, zero_division=0
        )
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "num_images": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # Macro over the classes present in the data (scikit-learn's default), so a subset test set is fair.
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "class_names": list(class_names),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
