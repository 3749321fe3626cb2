"""A small name -> object registry that refuses duplicates and suggests near names."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from medbench.errors import DuplicateNameError, UnknownNameError

T = TypeVar("T")


def closest_names(name: str, names: list[str], n: int = 3) -> list[str]:
    """Up to ``n`` names from ``names`` that look like ``name``, best first."""
    found = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
    # Prefix matches ("jsrt" -> "jsrt-anatomy") are what users type most; difflib misses them.
    found += [c for c in names if c.startswith(name) and c not in found]
    return found[:n]


class Registry(Generic[T]):
    """Objects registered under unique names.

    ``kind`` names what is registered ("task", "template") and appears in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise DuplicateNameError(f"a {self.kind} named {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(item: T) -> T:
            return self.add(name, item)

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        names = sorted(self._items)
        near = closest_names(name, names)
        hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(names)})"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
