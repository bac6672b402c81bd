"""The few reactor methods the runtime uses, as structural types.

Twisted's interfaces are zope ``Interface`` classes that mypy cannot check calls
against without a plugin; these ``Protocol``s name exactly what we call, and
both the real reactor and ``MemoryReactorClock``/``task.Clock`` satisfy them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Clock(Protocol):
    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any
    ) -> Any: ...


class FDSet(Protocol):
    def addReader(self, reader: Any) -> None: ...

    def removeReader(self, reader: Any) -> None: ...


class Reactor(Clock, FDSet, Protocol):
    """What the runtime needs of the reactor: time and file descriptors."""
