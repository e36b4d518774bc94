"""The one way emolens finds its plug-ins (model architectures, face detectors, dataset sources, output formats).

A registry is a package: its `__init__.py` holds the registry (the decorator, the lookups, and what plug-ins
import from it), and every module in the package is a plug-in, registering itself with that decorator when
imported. The registry calls `import_plugins(__name__)` before it answers, so adding a plug-in is adding a file,
and nothing lists them. Any other machinery (shared layers, a base class of its own) is a module beside the
package, never in it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil


@functools.cache
def import_plugins(package: str) -> tuple[str, ...]:
    """Imports every module of `package`, in name order, once; returns the modules' names.

    A plug-in that fails to import raises here, and the next call tries again.

    Examples:
        >>> import_plugins("emolens.predict.formats")
        ('faces_csv', 'predictions_jsonl')
    """
    names = sorted(module.name for module in pkgutil.iter_modules(importlib.import_module(package).__path__))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return tuple(names)


def plugin_rank(package: str, module: str) -> int:
    """Where the plug-in `module` comes in its package's name order; after them all for a module elsewhere.

    Registries that list their members in plug-in order sort by this (a stable sort keeps each module's own
    order), since another module may import a plug-in, and so register it, before the registry imports the rest.

    Examples:
        >>> plugin_rank("emolens.predict.formats", "emolens.predict.formats.predictions_jsonl")
        1
        >>> plugin_rank("emolens.predict.formats", "tests.test_writers")
        2
    """
    names = import_plugins(package)
    parent, _, name = module.rpartition(".")
    return names.index(name) if parent == package and name in names else len(names)
