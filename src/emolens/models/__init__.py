"""Model architectures by name."""

from emolens.models.architectures import ModelSpec, build_model, get_model_spec, list_models, register_model

__all__ = ["ModelSpec", "build_model", "get_model_spec", "list_models", "register_model"]
