"""Confidence that means what it says: temperature scaling and expected calibration error.

A network's softmax is not a probability: FER models trained with cross-entropy are typically over-confident.
Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks") divides the logits by one
number T, fitted on validation images by minimising the negative log-likelihood. It never changes which class
wins, only how sure the answer claims to be. After it, of the faces called "happy, 0.8", about 80% are happy.

Probabilities stand in for logits here: softmax(log p / T) equals softmax(z / T), since log p differs from the
logits z only by a constant per row. So a model file needs no change beyond the number in its card.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ECE_BINS = 15  # as Guo et al.
# The search range for T: wide enough for any real network, narrow enough to keep the exponent finite.
TEMPERATURE_RANGE = (0.05, 20.0)
_TINY = 1e-12


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """`probabilities` (N, classes) rescaled as if their logits were divided by `temperature`.

    Examples:
        >>> [round(float(p), 3) for p in apply_temperature(np.array([[0.8, 0.2]]), 2.0)[0]]
        [0.667, 0.333]
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0:
        return probabilities.astype(np.float32)
    logits = np.log(np.clip(probabilities, _TINY, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def apply_class_scale(probabilities: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    """`probabilities` (N, classes) with each class's column multiplied by `scale` (classes,) and each row
    renormalised: a shift of the classes' prior, which moves decisions between classes. A model trained on crowd
    votes learns that people call many subtle faces neutral; a factor under 1 for neutral lets expressive faces
    keep their expression. Fitted on validation images, like the temperature; None changes nothing.

    Examples:
        >>> [round(float(p), 3) for p in apply_class_scale(np.array([[0.6, 0.4]]), np.array([0.5, 1.0]))[0]]
        [0.429, 0.571]
    """
    if scale is None:
        return probabilities
    scaled = np.asarray(probabilities, dtype=np.float64) * scale
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The mean of -log p(true class), or with (N, classes) vote shares as `labels` the cross-entropy against
    them: what training minimised, and what T is fitted to.

    Examples:
        >>> p = np.array([[0.5, 0.5]])
        >>> round(negative_log_likelihood(p, np.array([0])), 3), round(negative_log_likelihood(p, np.array([[0.7, 0.3]])), 3)
        (0.693, 0.693)
    """
    log_p = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), _TINY, None))
    if np.ndim(labels) == 2:
        return float(-(np.asarray(labels, dtype=np.float64) * log_p).sum(axis=1).mean())
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels` (N,) under `probabilities` (N, classes).

    With vote shares (N, classes) as `labels`, the confidence it gives estimates the share of annotators who
    would choose the class. Fit it on validation images, never on the test split it will be judged on.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> labels = rng.integers(0, 2, 2000)
        >>> right = rng.random(2000) < 0.7          # 70% right...
        >>> guess = np.where(right, labels, 1 - labels)
        >>> sure = np.where(guess[:, None] == np.arange(2), 0.99, 0.01)   # ...but 99% sure
        >>> fit_temperature(sure, labels) > 1       # so it is softened
        True
    """
    from scipy.optimize import minimize_scalar  # here, not at the top: inference only applies T

    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("Expected at least one image to fit a temperature on. Received: 0 images")
    log_low, log_high = np.log(TEMPERATURE_RANGE)
    # Searching log T keeps the problem well scaled on both sides of 1.
    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(apply_temperature(probabilities, float(np.exp(log_t))), labels),
        bounds=(log_low, log_high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(found.x))


def reliability(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = ECE_BINS) -> dict[str, Any]:
    """Confidence against accuracy in `bins` equal-width bins of the top probability, and their gap.

    Args:
        probabilities: (N, classes) the model's probabilities.
        labels: (N,) class indices, each answer right or wrong; or (N, classes) vote shares, each answer worth
            the share of people who chose it (so the gap says how far confidence is from that share).

    Returns:
        A dict: `ece` (expected calibration error: the images-weighted mean of |accuracy - confidence| over the
        bins), and per bin its `edges`, `confidence` (mean top probability), `accuracy` (with vote shares, their
        mean) and `count` (empty bins hold None).

    Examples:
        >>> probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
        >>> round(reliability(probabilities, np.array([0, 0, 0, 1]))["ece"], 3)   # 100% right at 0.9, 50% at 0.6
        0.1
        >>> round(reliability(probabilities, np.array([[0.9, 0.1]] * 2 + [[0.4, 0.6]] * 2))["ece"], 3)
        0.1
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    confidence = probabilities.max(axis=1)
    predicted = probabilities.argmax(axis=1)
    correct = labels[np.arange(len(labels)), predicted] if labels.ndim == 2 else predicted == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bins are (low, high], as Guo et al.; the top probability of C classes is at least 1/C, never 0.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows: dict[str, list[Any]] = {"confidence": [], "accuracy": [], "count": []}
    gap = 0.0
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        rows["count"].append(count)
        if count == 0:
            rows["confidence"].append(None)
            rows["accuracy"].append(None)
            continue
        mean_confidence, accuracy = float(confidence[members].mean()), float(correct[members].mean())
        rows["confidence"].append(mean_confidence)
        rows["accuracy"].append(accuracy)
        gap += count * abs(accuracy - mean_confidence)
    return {"ece": gap / max(len(labels), 1), "edges": edges.tolist(), **rows}


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """ECE over `bins` equal-width confidence bins against class indices or vote shares (see `reliability`): 0 is
    perfectly calibrated."""
    return float(reliability(probabilities, labels, bins=bins)["ece"])
