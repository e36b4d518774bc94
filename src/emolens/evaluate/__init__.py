"""Metrics, figures and reports for trained models."""

from emolens.evaluate.evaluator import evaluate
from emolens.evaluate.metrics import compute_metrics

__all__ = ["compute_metrics", "evaluate"]
