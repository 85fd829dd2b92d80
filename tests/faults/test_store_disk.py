"""A full store disk, at the station level: `lastmile serve` on SQLite whose files may not grow.

The disk is filled the way a real one fills, under a running controller: the process's file size limit
(RLIMIT_FSIZE, set on the running process with `prlimit`, no root needed) is lowered to just above what the
store holds, so the next pages SQLite writes are refused by the kernel exactly as a full disk refuses them.
Python ignores SIGXFSZ, so the refused write is an error (EFBIG), not a killed process.

What the operator and the dispatcher must see: intake answers 503 `store_unavailable` with Retry-After and
changes nothing (a refused batch is not half stored); reads still answer; `/healthz` says what is wrong;
the log says it once, with no traceback; the process lives. When space is back, intake answers 201 again and
every package that ever got a 201 is in the store and accounted for.
"""

from __future__ import annotations

import resource
from pathlib import Path

import httpx

from controller.store import Store
from tests.e2e.serving import at, free_port
from tests.faults.accounting import account
from tests.faults.serving import HEADERS, health, log_of, poll, serve, stop, write_station

NOTE = "n" * 900  # about a page per package, so the store grows fast


def _batch(prefix: str, n: int) -> list[dict[str, object]]:
    lat, lon = at(1500, 0)
    return [
        {"key": f"{prefix}-{i}", "weight": 1.0, "dest_lat": lat, "dest_lon": lon, "note": NOTE}
        for i in range(n)
    ]


def _store_files(path: Path) -> int:
    """The largest of the store's files (the database and its write-ahead log): the limit applies per file."""
    return max((p.stat().st_size for p in path.parent.glob(path.name + "*")), default=0)


def test_a_full_store_disk_answers_503_loses_nothing_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "station.sqlite3"
    station = write_station(tmp_path, f"sqlite:///{db}")
    port = free_port()
    proc = serve(station, port, "serve")
    accepted: list[str] = []
    refused: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS, timeout=30) as client:
            r = client.post("/v1/packages", json={"packages": _batch("before", 10)})
            assert r.status_code == 201, r.text
            accepted += [f"before-{i}" for i in range(10)]

            # The disk fills: no file of the process may grow past what the store holds now plus a little.
            limit = _store_files(db) + 64 * 1024
            assert (station.parent / "serve.log").stat().st_size < limit  # its log keeps its room
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

            answer = None
            for b in range(200):
                batch = _batch(f"full{b}", 20)
                r = client.post("/v1/packages", json={"packages": batch})
                if r.status_code == 201:
                    accepted += [p["key"] for p in batch]
                    continue
                answer = r
                refused += [p["key"] for p in batch]
                break
            assert answer is not None, "the store never filled"
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "store_unavailable", answer.text
            assert "disk" in answer.text, answer.text
            assert int(answer.headers["Retry-After"]) > 0

            # Full, not gone: a second refusal, reads answer, health says what is wrong, the process lives.
            again = client.post("/v1/packages", json={"packages": batch})  # the same batch, sent again
            assert again.status_code == 503, again.text
            listed = client.get("/v1/packages", params={"limit": 5})
            assert listed.status_code == 200, listed.text
            said = health(port)
            assert "disk" in said["store"], said
            assert proc.poll() is None

            # Space again: intake answers 201 at once and the planning loop, refused meanwhile, goes on.
            unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, unlimited)
            after = {"packages": _batch("after", 5)}
            r = poll(
                lambda: (x := client.post("/v1/packages", json=after)).status_code == 201 and x,
                15,
                what="intake answers 201 once space is back",
            )
            accepted += [f"after-{i}" for i in range(5)]
            ids = [p["id"] for p in r.json()["packages"]]
            poll(
                lambda: all(client.get(f"/v1/packages/{i}").json()["state"] == "van" for i in ids),
                30,
                what="the planning loop hands the new packages to the vans (no vehicles here)",
            )
            assert poll(lambda: health(port)["store"] == "ok", 40, what="/healthz says the store is ok again")
    finally:
        stop(proc)

    log = log_of(station, "serve")
    assert "Traceback" not in log, log[-3000:]
    assert 1 <= log.count("store fault during") <= 3, log[-3000:]  # once per kind a minute, not per request

    with Store(f"sqlite:///{db}") as store:
        outcome = account(store, accepted)
        outcome.check()
        assert set(outcome.verdicts().values()) == {"van"}, outcome.verdicts()
        assert [k for k in refused if store.get_by_key(k) is not None] == []  # a 503 changed nothing
