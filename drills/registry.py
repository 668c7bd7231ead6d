"""The one registry shape for drill plug-ins: fault types, rollbacks, probes and checks.

Why: each kind had its own dict literal and the faults and checks each had a copied
``register_*`` function that nothing called. A :class:`Registry` is still a plain
``{name: class}`` mapping (scenario validation looks names up in it and lists them in its
errors), built from its classes and extended with :meth:`Registry.add`, which refuses a name two
different classes claim instead of silently replacing the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, type[T]], Generic[T]):
    """``{name: class}`` keyed by each class's ``key`` attribute (``type`` or ``name``)."""

    def __init__(self, what: str, key: str, classes: Iterable[type[T]] = ()) -> None:
        super().__init__()
        self.what = what
        self.key = key
        for cls in classes:
            self.add(cls)

    def add(self, cls: type[T]) -> type[T]:
        """Register ``cls`` under its name (a plugin's, or a test's own); usable as a class
        decorator. Registering the same class again is a no-op."""
        name = getattr(cls, self.key)
        if self.get(name, cls) is not cls:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = cls
        return cls
