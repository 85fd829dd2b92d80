"""Running the station's event loop: uvloop where it is installed, the standard loop elsewhere.

The controller is one asyncio process that serves HTTP, follows every vehicle link and writes the store.
uvloop (libuv underneath) roughly halves the loop's own cost per socket event, which is most of the cost
of a small API request; it is a dependency on Linux and macOS and absent on Windows, where the standard
loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

try:
    import uvloop
except ImportError:  # Windows: no uvloop wheel
    uvloop = None  # type: ignore[assignment]

__all__ = ["run"]


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on uvloop when available."""
    if uvloop is not None:
        return uvloop.run(main)
    return asyncio.run(main)
