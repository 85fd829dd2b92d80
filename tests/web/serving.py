"""A station with the console, served from a background thread, that the tests can stop and start again.

The browser tests drive Playwright's synchronous API, which cannot run inside an event loop, so the station
(simulators, service, uvicorn) runs on its own thread and loop; the test talks to it over HTTP like an
operator's browser, and reaches into the simulators only to check what really happened to a vehicle.
`stop_server()` / `start_server()` stop uvicorn and start a new one on the same port, the station going on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import uvicorn

from controller.api.app import create_app
from controller.service import StationService
from controller.web import mount_console


class ConsoleServer:
    """`with ConsoleServer(factory) as srv:` where `factory()` is an async context giving a service."""

    def __init__(self, factory: Callable[[], AbstractAsyncContextManager[Any]], *, timeout_s: float = 60):
        self.factory = factory
        self.timeout_s = timeout_s
        self.port = 0
        self.context: Any = None  # what the factory yielded (a SimStation or a service)
        self.service: StationService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._done: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="console-station", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ConsoleServer:
        self._thread.start()
        if not self._ready.wait(self.timeout_s):
            raise TimeoutError("the station did not start")
        if self._error is not None:
            raise RuntimeError("the station failed to start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(self.timeout_s)

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run `fn()` (a coroutine function) on the station's loop; returns its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout)

    def stop_server(self) -> None:
        self.call(self._stop_server)

    def start_server(self) -> None:
        self.call(self._start_server)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        async with self.factory() as context:
            self.context = context
            self.service = getattr(context, "service", context)
            await self._start_server()
            self._ready.set()
            await self._done.wait()
            await self._stop_server()

    async def _start_server(self) -> None:
        assert self.service is not None
        app = create_app(self.service, webhook=False)
        mount_console(app, self.service)  # the line the lead adds to create_app
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=1)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(20):
            while not self._server.started:
                if self._task.done():
                    await self._task
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def _stop_server(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None


@contextlib.asynccontextmanager
async def plain_service(service: StationService) -> AsyncIterator[StationService]:
    """A service with its store, as a factory result (the store is closed after)."""
    try:
        async with service:
            yield service
    finally:
        service.store.close()
