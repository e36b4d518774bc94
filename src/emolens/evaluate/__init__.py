"""Metrics, figures and reports for trained models."""

from emolens.evaluate.evaluation import Evaluation, evaluation_metrics
from emolens.evaluate.evaluator import evaluate, write_evaluation_files, write_evaluation_report
from emolens.evaluate.metrics import compute_metrics
from emolens.evaluate.predictions import SplitPredictions, predict_split

__all__ = [
    "Evaluation",
    "SplitPredictions",
    "compute_metrics",
    "evaluate",
    "evaluation_metrics",
    "predict_split",
    "write_evaluation_files",
    "write_evaluation_report",
]
