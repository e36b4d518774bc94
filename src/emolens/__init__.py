"""emolens: facial emotion recognition, from a FER2013-style dataset to predictions."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["DetectorConfig", "Face", "Recognizer", "Result", "Sources", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import emolens` (and the CLI's start) stays fast and loads no backend.
    if name in ("DetectorConfig", "Face", "Recognizer", "Result", "Sources"):
        from emolens import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'emolens' has no attribute {name!r}")
