"""`emolens doctor`: is everything installed and working, and what will training run on?"""

from __future__ import annotations

import importlib
import os
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _check(name: str, probe) -> Check:
    try:
        return Check(name, True, str(probe()))
    except Exception as error:  # noqa: BLE001 - a doctor reports every failure rather than stopping at one
        return Check(name, False, f"{type(error).__name__}: {error}")


def _forward_pass() -> str:
    import numpy as np

    from emolens.data.preprocess import to_model_input
    from emolens.models import build_model

    model = build_model("seed")
    probabilities = np.asarray(model.predict(to_model_input(np.zeros((2, 48, 48), np.uint8)), verbose=0))
    if probabilities.shape != (2, 7) or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4):
        raise RuntimeError(f"unexpected output {probabilities.shape}")
    return "the seed model builds and predicts"


def _bundled_model() -> str:
    import numpy as np

    from emolens.models.classifier import load_classifier
    from emolens.predict.detectors import DetectorConfig, detector_names

    for name in detector_names():
        DetectorConfig(name).build()
    classifier = load_classifier()
    probabilities = classifier.predict(np.zeros((1, classifier.input_size, classifier.input_size), np.uint8))
    if probabilities.shape != (1, len(classifier.class_names)):
        raise RuntimeError(f"unexpected output {probabilities.shape}")
    evaluation = classifier.card.get("evaluation", {})
    accuracy = f", {100 * evaluation['accuracy']:.1f}% on {evaluation['split']}" if "accuracy" in evaluation else ""
    return f"{classifier.card.get('model', '?')} via ONNX Runtime{accuracy}; the face detectors load ({', '.join(detector_names())})"


def _cache_writable() -> str:
    from emolens.data.cache import cache_dir

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder):
        pass
    return str(folder)


def run_checks() -> list[Check]:
    """Every check, in the order a person reads them; each one reports its own failure."""
    from emolens import __version__, backend

    checks = [Check("emolens", True, __version__)]
    for module in ("numpy", "PIL", "sklearn", "matplotlib", "rich", "cv2", "onnxruntime", "keras"):
        checks.append(_check(module, lambda m=module: getattr(importlib.import_module(m), "__version__", "installed")))
    checks.append(
        _check(
            "backend", lambda: f"{backend.backend_name()} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND', 'unset')})"
        )
    )
    checks.append(_check("devices", lambda: ", ".join(backend.devices())))
    checks.append(_check("threads", backend.thread_count))
    checks.append(_check("versions", lambda: ", ".join(f"{k} {v}" for k, v in backend.versions().items())))
    checks.append(_check("model", _forward_pass))
    checks.append(_check("bundled model", _bundled_model))
    checks.append(_check("dataset cache", _cache_writable))
    return checks
