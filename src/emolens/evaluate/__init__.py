"""Metrics, figures and reports for trained models."""

from emolens.evaluate.evaluator import (
    SplitPredictions,
    evaluate,
    evaluation_metrics,
    predict_split,
    write_evaluation_files,
    write_evaluation_report,
)
from emolens.evaluate.metrics import compute_metrics

__all__ = [
    "SplitPredictions",
    "compute_metrics",
    "evaluate",
    "evaluation_metrics",
    "predict_split",
    "write_evaluation_files",
    "write_evaluation_report",
]
