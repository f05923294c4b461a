"""Lazy package exports (PEP 562): a package names its public classes without importing
TensorFlow until one is used, so ``--help`` and the data tools start fast."""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for a package whose names live in submodules.

    Args:
        package: str. The package's ``__name__``.
        exports: dict. Public name -> the module that defines it (absolute). A name must
            not be a submodule's name too (importing the submodule would shadow it).

    Example::

        __getattr__, __dir__ = lazy_exports(__name__, {"NextItNet": "nextitnet.nextitnet_backbone"})
    """

    def __getattr__(name):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals_of(package)[name] = value  # later lookups skip __getattr__
        return value

    def __dir__():
        return sorted(set(exports) | set(globals_of(package)))

    return __getattr__, __dir__


def by_module(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """``{module: (name, ...)}`` as :func:`lazy_exports`' ``{name: module}``."""
    return {name: module for module, names in table.items() for name in names}


def globals_of(package: str) -> dict:
    """The package module's namespace."""
    return vars(sys.modules[package])
