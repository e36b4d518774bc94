"""The one way emolens finds its plug-ins (model architectures, face detectors, dataset sources, output formats).

A registry is a package: its `__init__.py` holds the registry (the decorator, the lookups, what they need), and
every module in the package is a plug-in, registering itself with that decorator when imported. The registry
calls `import_plugins(__name__)` before it answers, so adding a plug-in is adding a file, and nothing lists them.
Machinery that is not a plug-in (base classes, shared layers, helpers) lives beside the package, never in it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil


@functools.cache
def import_plugins(package: str) -> tuple[str, ...]:
    """Imports every module of `package`, in name order, once; returns the modules' names.

    Registries keep their members in the order they register, so name order is also their listing order
    wherever a registry does not sort. A plug-in that fails to import raises here, and the next call tries again.

    Examples:
        >>> import_plugins("emolens.predict.formats")
        ('faces_csv', 'predictions_jsonl')
    """
    names = sorted(module.name for module in pkgutil.iter_modules(importlib.import_module(package).__path__))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return tuple(names)
