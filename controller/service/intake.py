"""Group commit for package intake: concurrent submissions share one store transaction.

Each submission is all-or-nothing on its own, but a transaction per HTTP request makes the store's single
writer the bottleneck under load. Submissions that arrive while the store is busy wait in a queue; the
next write takes all of them in one `submit_many`. If that merged batch fails (one client's bad item or
key conflict), each submission is retried alone, so one client's error never becomes another's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from controller.packages import Package, PackageIn

Stored = list[tuple[Package, bool]]


class GroupCommit:
    """`await intake.submit(requests)` -> what `submit_many(requests)` would return for them alone."""

    def __init__(self, submit_many: Callable[[list[PackageIn]], Awaitable[Stored]]) -> None:
        self._submit_many = submit_many
        self._waiting: list[tuple[list[PackageIn], asyncio.Future[Stored]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, requests: Sequence[PackageIn]) -> Stored:
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(requests), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="lastmile.intake.group_commit")
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            groups, self._waiting = self._waiting, []
            if len(groups) == 1:
                await self._one(*groups[0])
                continue
            merged = [request for requests, _ in groups for request in requests]
            try:
                stored = await self._submit_many(merged)
            except Exception:  # someone's bad input or conflict: give everyone their own answer
                for requests, future in groups:
                    await self._one(requests, future)
                continue
            start = 0
            for requests, future in groups:
                if not future.done():
                    future.set_result(stored[start : start + len(requests)])
                start += len(requests)

    async def _one(self, requests: list[PackageIn], future: asyncio.Future[Stored]) -> None:
        try:
            result = await self._submit_many(requests)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)
