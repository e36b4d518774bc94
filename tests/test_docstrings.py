"""Every public function and class exported from emolens and its subpackages shows an example, and the examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import sys

import pytest

from conftest import ROOT

PACKAGES = (
    "emolens",
    "emolens.data",
    "emolens.models",
    "emolens.train",
    "emolens.evaluate",
    "emolens.predict",
    "emolens.predict.detectors",
    "emolens.serve",
)


def _exported() -> dict[str, object]:
    found = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return found


EXPORTED = _exported()


def test_every_export_has_an_example():
    missing = [name for name, obj in EXPORTED.items() if "Examples:" not in (obj.__doc__ or "")]
    assert not missing, f"no Examples: in {missing}"
    assert len(EXPORTED) >= 40  # the list itself is found, not written out: a package losing its __all__ shows here


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_the_examples_run(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # examples name samples/astronaut.png as a user in the checkout would
    obj = EXPORTED[name]
    module = sys.modules[obj.__module__]
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, module=module, globs=vars(module).copy())
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} failing example(s) in {name}'s docstring (run with -s to see them)"
