"""How often people would agree with a model: scores against a crowd's votes and against the source's own label.

With FER+'s ten votes a face, accuracy against the majority says how often the model names the emotion most
annotators chose; the vote share says what fraction of annotators chose the emotion the model named, which credits
a second-best answer that a third of people gave. Confidence is compared with that share, bin by bin: a calibrated
model that says "happy 0.7" is named by about 70% of annotators, on average, for such faces.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emolens.models.calibration import ECE_BINS, reliability


def vote_agreement(votes: np.ndarray, probabilities: np.ndarray, *, bins: int = ECE_BINS) -> dict[str, Any]:
    """The mean vote share of the predicted class, and the confidence against the vote share by bins.

    Args:
        votes: (N, classes) vote shares over the model's classes, each row summing to at most 1.
        probabilities: (N, classes) the model's (calibrated) probabilities.
        bins: int. Equal-width confidence bins. Defaults to 15, as the calibration error.

    Returns:
        vote_share, and vote_calibration: the weighted mean gap between confidence and vote share
        (an ECE with vote shares in place of right or wrong) and the bins it came from.

    Examples:
        >>> votes = np.array([[0.8, 0.2], [0.4, 0.6]])
        >>> agreement = vote_agreement(votes, np.array([[0.9, 0.1], [0.7, 0.3]]), bins=2)
        >>> round(agreement["vote_share"], 2), round(agreement["vote_calibration"]["gap"], 2)
        (0.6, 0.2)
    """
    predicted = probabilities.argmax(axis=1)
    share = votes[np.arange(len(votes)), predicted]
    binned = reliability(probabilities, votes, bins=bins)
    edges = binned["edges"]
    table = [
        {"from": edges[b], "to": edges[b + 1], "faces": count, "confidence": confidence, "vote_share": mean_share}
        for b, (count, confidence, mean_share) in enumerate(
            zip(binned["count"], binned["confidence"], binned["accuracy"], strict=True)
        )
        if count
    ]
    return {
        "vote_share": float(share.mean()) if len(share) else 0.0,
        "vote_calibration": {"bins": bins, "gap": binned["ece"], "table": table},
    }


def source_label_accuracy(source_labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy against the source's own label (FER2013's folder) on the faces whose label the model knows.

    Examples:
        >>> source_label_accuracy(np.array([0, 1, -1]), np.array([0, 0, 1]))
        {'accuracy': 0.5, 'num_images': 2}
    """
    known = source_labels >= 0
    accuracy = float((source_labels[known] == predicted[known]).mean()) if known.any() else None
    return {"accuracy": accuracy, "num_images": int(known.sum())}


def scoring_notes(metrics: dict[str, Any]) -> list[str]:
    """What an evaluation left out and how the classes met, as sentences for the terminal and the report.

    Examples:
        >>> scoring_notes({"left_out": {"votes tied between classes": 3}, "classes": {"model_only": ["contempt"]}})
        ['Left out 3 images: votes tied between classes', 'The data has no contempt: predicting it counts as wrong.']
    """
    notes = [f"Left out {count} images: {reason}" for reason, count in (metrics.get("left_out") or {}).items()]
    classes = metrics.get("classes") or {}
    if classes.get("renamed"):
        notes.append(
            "Classes matched by name: " + ", ".join(f"{data} -> {model}" for data, model in classes["renamed"].items())
        )
    if classes.get("model_only"):
        notes.append(
            f"The data has no {', '.join(classes['model_only'])}: "
            f"predicting {'them' if len(classes['model_only']) > 1 else 'it'} counts as wrong."
        )
    if classes.get("never_predicted"):
        notes.append(f"Never predicted: {', '.join(classes['never_predicted'])}")
    return notes
