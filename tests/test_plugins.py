"""ARCHITECTURE.md's one rule for plug-ins: a registry is a package whose every module is a registered plug-in,
found by `emolens._plugins.import_plugins`; the help texts that name plug-ins are made from the registries, and
the docs' hand-written table of models names exactly the registered ones."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable

import numpy as np
import pytest

from conftest import ROOT
from emolens._plugins import import_plugins
from emolens.cli import build_parser


def _models() -> list[object]:
    from emolens.models import list_models

    return [spec.build for spec in list_models()]


def _detectors() -> list[object]:
    from emolens.predict.detectors import list_detectors

    return [spec.detector for spec in list_detectors()]


def _sources() -> list[object]:
    from emolens.data import sources

    return [kind.lister for kind in sources._kinds().values()]


def _formats() -> list[object]:
    from emolens.predict.formats import output_format_classes, output_formats

    return list(output_format_classes(output_formats()))


# Each registry (its package) and what it has registered: functions or classes, each defined in its plug-in.
REGISTRIES: dict[str, Callable[[], list[object]]] = {
    "emolens.models.architectures": _models,
    "emolens.predict.detectors": _detectors,
    "emolens.data.sources": _sources,
    "emolens.predict.formats": _formats,
}


@pytest.mark.parametrize("package", sorted(REGISTRIES))
def test_every_module_of_a_registry_is_a_registered_plug_in(package):
    modules = {module.name for module in pkgutil.iter_modules(importlib.import_module(package).__path__)}
    defined_in = {member.__module__ for member in REGISTRIES[package]()}
    assert defined_in == {f"{package}.{name}" for name in modules}, "a module that registers nothing, or a stray"
    assert import_plugins(package) == tuple(sorted(modules))


def test_listing_order_is_the_plug_ins_name_order_whichever_was_imported_first(monkeypatch):
    # Another module may import one plug-in (predict/inputs.py imports the ZIP source) before the registry
    # imports the rest: the order listed is still the modules' name order.
    from emolens.data import sources
    from emolens.models import architectures, list_models

    def last_module_first(registered: dict, module_of) -> dict:
        last = max(module_of(member) for member in registered.values())
        return {name: member for name, member in registered.items() if module_of(member) == last} | registered

    names, kinds = [spec.name for spec in list_models()], sources.source_kinds()
    models = last_module_first(architectures._models(), lambda spec: spec.build.__module__)
    assert next(iter(models)) == "vgg"
    monkeypatch.setattr(architectures, "_MODELS", models)
    monkeypatch.setattr(sources, "_KINDS", last_module_first(sources._kinds(), lambda kind: kind.lister.__module__))
    assert [spec.name for spec in list_models()] == names == ["seed", "seed_bn", "mini_resnet", "resnet", "vgg"]
    assert sources.source_kinds() == kinds


def _help(*command: str) -> str:
    parser = build_parser()
    for name in command:
        parser = next(
            action.choices[name] for action in parser._actions if isinstance(action, argparse._SubParsersAction)
        )
    return " ".join(parser.format_help().split())  # unwrapped, whatever the terminal's width


def test_help_names_every_detector_and_output_format_from_the_registries(monkeypatch):
    from emolens.predict import formats
    from emolens.predict.detectors import FaceDetector, Framing, register_detector, unregister_detector

    monkeypatch.setattr(formats, "_OUTPUT_FORMATS", dict(formats._formats()))

    @formats.register_output_format("names")
    class NamesFile(formats.OutputFile):
        filename = "names.txt"

    @register_detector("nowhere", framing=Framing(scale=1.0, dy=0.0), description="finds no face")
    class Nowhere(FaceDetector):
        def _detect(self, gray, min_face):
            return np.zeros((0, 4)), None, None

    try:
        shown = _help("predict")
    finally:
        unregister_detector("nowhere")
    assert "csv (faces.csv, the default), jsonl (predictions.jsonl), names (names.txt)" in shown
    assert "{yunet,haar,nowhere}" in shown and "nowhere: finds no face" in shown
    assert "haar: OpenCV's Haar frontal-face cascade" in shown


def test_help_names_every_kind_of_source_from_the_registry(monkeypatch):
    from emolens.data import sources

    monkeypatch.setattr(sources, "_KINDS", dict(sources._kinds()))
    sources.register_source(".npz", description="a NumPy .npz")(lambda path: None)
    kinds = (
        "a folder with train/ and test/ class subfolders, the FER2013 .csv, a .zip of such a folder, or a NumPy .npz"
    )
    for command in (("train",), ("data", "inspect")):
        assert kinds in _help(*command)


def docs_table_names(page: str, heading: str) -> list[str]:
    """The first column of the table under `heading` in docs/`page`, backquotes removed."""
    section = (ROOT / "docs" / page).read_text(encoding="utf-8").split(f"\n{heading}\n", 1)[1]
    rows = [line for line in section.split("\n\n", 1)[0].splitlines() if line.startswith("| `")]
    return [row.split("|")[1].strip().strip("`") for row in rows]


def test_the_docs_describe_every_registered_model():
    from emolens.models import list_models

    assert sorted(docs_table_names("train.md", "## Models")) == sorted(spec.name for spec in list_models())
