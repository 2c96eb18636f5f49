"""A name → constructor registry, filled by a decorator (instead of ``eval("backbones.%s" % name)``)."""
from __future__ import annotations

from typing import Callable, Dict, TypeVar

from arcface_paddle.core.errors import ToolkitError

T = TypeVar("T", bound=Callable)


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Callable] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def decorate(constructor: T) -> T:
            key = name or constructor.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} registered twice")
            self._entries[key] = constructor
            return constructor
        return decorate

    def get(self, name: str) -> Callable:
        try:
            return self._entries[name]
        except KeyError:
            raise ToolkitError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._entries))}") from None

    def build(self, name: str, **kwargs):
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
