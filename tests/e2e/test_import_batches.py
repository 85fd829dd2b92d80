"""`lastmile import` of a file bigger than one batch may be (issue 20): sent in batches, and resumable.

The station is the real API app served over HTTP with a real SQLite store (`ApiThread`). Between the CLI and
the station sits a relay that passes every request on but, once, loses the station's answer to a batch the
station did store: the worst interruption, since the CLI cannot know the batch went in. Running the same
command again must leave exactly one package per row.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from controller.api.server import ApiThread
from controller.cli import app
from tests.api.helpers import ROLE_TOKEN, STATION, station_config

ROWS = 10_500  # more than the 10,000 a single request may hold
BATCH = 1000
TOKEN = ROLE_TOKEN["dispatcher"]


class LosingRelay(ThreadingHTTPServer):
    """Passes requests to `upstream`; the `lose`-th package submission is stored but answered with a 502."""

    def __init__(self, upstream: str, lose: int) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.upstream = httpx.Client(base_url=upstream, timeout=60)
        self.lose = lose
        self.submissions = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Relay(BaseHTTPRequestHandler):
    server: LosingRelay

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        answer = self.server.upstream.post(self.path, content=body, headers=headers)
        self.server.submissions += 1
        if self.server.submissions == self.server.lose:
            status, content = (
                502,
                b'{"error": {"reason": "the station\'s answer was lost", "code": "bad_gateway"}}',
            )
        else:
            status, content = answer.status_code, answer.content
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def station(tmp_path: Path) -> Iterator[ApiThread]:
    with ApiThread(station_config(), f"sqlite:///{tmp_path / 'store.sqlite3'}") as api:
        yield api


@pytest.fixture
def relay(station: ApiThread) -> Iterator[LosingRelay]:
    server = LosingRelay(station.url, lose=3)
    thread = threading.Thread(target=server.serve_forever, name="losing-relay", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(10)
    server.server_close()
    server.upstream.close()


def _csv(path: Path) -> Path:
    lines = ["key,weight,weight_unit,lat,lon,priority"]
    for i in range(ROWS):
        lat = STATION[0] + 0.02 * ((i % 97) / 97 - 0.5)
        lon = STATION[1] + 0.02 * ((i % 89) / 89 - 0.5)
        lines.append(f"IMP-{i:05d},{1 + i % 7 * 0.5},{'lb' if i % 2 else 'kg'},{lat:.6f},{lon:.6f},{i % 10}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _stored(api: ApiThread) -> int:
    operator = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
    answer = httpx.get(f"{api.url}/v1/fleet", headers=operator, timeout=30)
    answer.raise_for_status()
    return sum(answer.json()["queue"].values())


def _import(csv: Path, url: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["import", str(csv), "--url", url], env={"LASTMILE_TOKEN": TOKEN, "COLUMNS": "200"}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow
def test_a_big_import_goes_in_batches_and_a_rerun_after_a_lost_answer_stores_each_row_once(
    station: ApiThread, relay: LosingRelay, tmp_path: Path
) -> None:
    csv = _csv(tmp_path / "big.csv")
    code, _, stderr = _import(csv, relay.url)
    assert code == 2
    # batch 3 holds rows 2002-3001 (the header is row 1); the station stored it, the CLI never heard so
    assert "stopped at rows 2002-3001" in stderr and "run the same command again to resume" in stderr
    assert "502" in stderr and "answer was lost" in stderr
    assert relay.submissions == 3
    assert _stored(station) == 3 * BATCH

    code, stdout, stderr = _import(csv, relay.url)  # the same command again
    assert code == 0, stderr
    assert f"{ROWS} packages, {ROWS - 3 * BATCH} new" in stdout
    assert relay.submissions == 3 + 11  # every batch again; the first three come back as repeats
    assert _stored(station) == ROWS
