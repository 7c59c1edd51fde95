"""Names imported on first use, so that `import prodlens.<package>` and the command line start without torch, Arrow
or the models: a package's `__init__` declares where each public name lives and `exports` gives it the module-level
`__getattr__` / `__dir__` (PEP 562) that import the defining module when the name is first asked for."""
from __future__ import annotations

import importlib
from typing import Callable


def exports(package: str, where: dict[str, list[str]]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`where`: submodule (relative, without the dot) → the public names it defines."""
    owner = {name: module for module, names in where.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{owner[name]}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(owner))

    return __getattr__, __dir__


class LazyModule:
    """A module imported when one of its attributes is first used (`api = LazyModule("prodlens.api")`)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)
