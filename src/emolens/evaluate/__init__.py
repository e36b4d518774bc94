"""Metrics, figures and reports for trained models."""

from emolens.evaluate.evaluator import TrainedModel, evaluate, load_trained_model
from emolens.evaluate.metrics import compute_metrics

__all__ = ["TrainedModel", "compute_metrics", "evaluate", "load_trained_model"]
