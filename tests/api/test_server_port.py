"""A port that is taken: the server says which one, and the demo and callers can carry on."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.api.server import serve
from controller.service import StationService
from controller.store import Store
from controller.tokens import hash_tokens, toml_inline
from tests.api.helpers import station_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as other:
        yield other.getsockname()[1]


async def test_serving_on_a_taken_port_raises_an_error_naming_it(tmp_path: Path, taken_port: int) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    try:
        async with StationService(station_config(), store) as service:
            expected = f"cannot serve the API on 127.0.0.1:{taken_port}: address already in use"
            with pytest.raises(OSError, match=expected):
                await serve(service, "127.0.0.1", taken_port)
            # The loop lives on (uvicorn's own answer, sys.exit(1), stopped it): serve on any free port now.
            ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            serving = asyncio.create_task(serve(service, "127.0.0.1", 0, on_ready=ready.set_result))
            assert await asyncio.wait_for(ready, 20) != taken_port
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    finally:
        store.close()


def test_lastmile_serve_on_a_taken_port_says_so_in_one_line(tmp_path: Path, taken_port: int) -> None:
    station = tmp_path / "station.toml"
    station.write_text(
        f'name = "taken"\nlat = 33.44\nlon = -112.256\nstore_url = "sqlite:///{tmp_path / "s.sqlite3"}"\n'
        f"[api]\ntokens = {toml_inline(hash_tokens({'t': 'operator'}))}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "controller", "serve", "--station", str(station), "--port", str(taken_port)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"cannot serve the API on 127.0.0.1:{taken_port}: address already in use" in result.stderr
    assert "Traceback" not in result.stderr
