"""Register ge-nas layers with Ultralytics the moment Ultralytics loads its model parser.

``import ge_nas`` must make ``GatherExcite`` usable in model YAMLs, yet must not import torch
itself (every ``ge-nas`` command starts by importing the package). So when Ultralytics'
``tasks`` module is already loaded the layers are registered at once; otherwise a finder on
``sys.meta_path`` waits for that module and registers them right after it has run.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["TASKS_MODULE", "register_layers_with_ultralytics"]

# Ultralytics resolves the module names of a model YAML in this module's namespace.
TASKS_MODULE = "ultralytics.nn.tasks"


def register_layers_with_ultralytics() -> None:
    """Register now if Ultralytics' model parser is loaded, else as soon as it loads."""
    if TASKS_MODULE in sys.modules:
        _register()
    elif not any(isinstance(finder, _RegisterAfterLoading) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterLoading())


def _register(_module: ModuleType | None = None) -> None:
    from ge_nas.yolo.registration import register_layers  # imports torch and Ultralytics

    register_layers()


class _RegisterAfterLoading(importlib.abc.MetaPathFinder):
    """Finds Ultralytics' ``tasks`` module as the other finders do, and registers after it runs."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TASKS_MODULE:
            return None
        sys.meta_path.remove(self)  # once is enough; and the real finders must find the module
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _register(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
