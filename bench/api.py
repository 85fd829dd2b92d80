"""Benchmark: the assignment API under load, as the van dispatcher would drive it.

    python bench/api.py [--quick]

The server is a separate process (`python -m controller.api.server`, uvicorn, one worker) over the
example Tolleson station with a fresh SQLite store in a temporary directory; no vehicles are connected,
so each package is planned (routes, zones, feasibility) and handed to a van with its reasons, which is
the full intake path: validate, store, plan, store the decision, answer. The load comes from httpx async
clients in this process:
- single-package POSTs from one client (latency unloaded), then from 32 concurrent clients for a fixed
  time: sustained packages/s, p50 and p99;
- batches of 500 packages, one at a time: packages/s and the time per batch.
Writes its section of docs/benchmarks.md (`--quick` runs shorter and writes nothing unless --write).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import machine, table, write_section  # noqa: E402
from controller.station import load_station  # noqa: E402

EXAMPLE = ROOT / "examples" / "tolleson" / "station.toml"
TOKEN = "bench-" + uuid.uuid4().hex


def packages(n: int, prefix: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Packages within 8 km of the example station, 0.2-4 kg."""
    frame = load_station(EXAMPLE).frame
    radius = rng.uniform(200, 8000, n)
    angle = rng.uniform(0, 2 * np.pi, n)
    lon, lat = frame.to_wgs84(radius * np.sin(angle), radius * np.cos(angle))
    weight = rng.uniform(0.2, 4.0, n)
    return [
        {
            "key": f"{prefix}-{i}",
            "weight": round(float(weight[i]), 3),
            "weight_unit": "kg",
            "dest_lat": float(lat[i]),
            "dest_lon": float(lon[i]),
        }
        for i in range(n)
    ]


class Server:
    """`python -m controller.api.server` on a free port, with its own store in a temporary directory."""

    def __init__(self, workdir: Path) -> None:
        store = f"sqlite:///{workdir / 'bench.sqlite3'}"
        cmd = [sys.executable, "-m", "controller.api.server", "--station", str(EXAMPLE), "--store", store]
        cmd += ["--port", "0", "--token", f"{TOKEN}=operator"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "listening on PORT", or EOF if it failed
        if not line.startswith("listening on"):
            self.proc.kill()
            raise RuntimeError(
                f"the server did not start: {line}{self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        self.url = f"http://127.0.0.1:{int(line.split()[-1])}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def singles(url: str, seconds: float, concurrency: int, rng: np.random.Generator) -> dict[str, float]:
    """Single-package POSTs from `concurrency` clients for `seconds`: throughput and latency."""
    pool = packages(200_000, f"s-{uuid.uuid4().hex[:6]}", rng)
    latencies: list[float] = []
    errors = 0
    index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal index, errors
            while time.perf_counter() < end:
                body = pool[index]
                index += 1
                t0 = time.perf_counter()
                r = await client.post("/v1/packages", json=body)
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code != 201

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "errors": errors,
        "per_s": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


async def batches(url: str, count: int, size: int, rng: np.random.Generator) -> dict[str, float]:
    """`count` batches of `size` packages, one after the other."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    times: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        for b in range(count):
            body = {"packages": packages(size, f"b-{uuid.uuid4().hex[:6]}-{b}", rng)}
            t0 = time.perf_counter()
            r = await client.post("/v1/packages", json=body)
            times.append(time.perf_counter() - t0)
            errors += r.status_code != 201
    return {
        "batches": count,
        "errors": errors,
        "per_s": count * size / sum(times),
        "batch_p50_ms": statistics.median(times) * 1000,
        "batch_max_ms": max(times) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 30 s in all")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md even with --quick")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    seconds, n_batches = (8.0, 4) if args.quick else (30.0, 12)
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            asyncio.run(singles(server.url, 2.0, args.concurrency, rng))  # warm-up: imports, caches, pool
            alone = asyncio.run(singles(server.url, seconds / 3, 1, rng))
            single = asyncio.run(singles(server.url, seconds, args.concurrency, rng))
            batch = asyncio.run(batches(server.url, n_batches, 500, rng))
        finally:
            server.stop()
    print(
        f"single POSTs, one client: {alone['per_s']:.0f}/s, p50 {alone['p50_ms']:.1f} ms, "
        f"p99 {alone['p99_ms']:.1f} ms"
    )
    print(
        f"single POSTs, {args.concurrency} concurrent, {seconds:.0f} s: {single['per_s']:.0f}/s, "
        f"p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms, errors {single['errors']}"
    )
    print(
        f"batches of 500 x {n_batches}: {batch['per_s']:.0f} packages/s, "
        f"{batch['batch_p50_ms']:.0f} ms per batch (max {batch['batch_max_ms']:.0f}), "
        f"errors {batch['errors']}"
    )
    if args.quick and not args.write:
        return
    rows: list[list[object]] = [
        [
            f"single package, one client, {seconds / 3:.0f} s",
            f"{alone['per_s']:.0f} packages/s",
            f"{alone['p50_ms']:.1f} ms",
            f"{alone['p99_ms']:.1f} ms",
            f"{alone['errors']:.0f}",
        ],
        [
            f"single package, {args.concurrency} concurrent clients, {seconds:.0f} s",
            f"{single['per_s']:.0f} packages/s",
            f"{single['p50_ms']:.1f} ms",
            f"{single['p99_ms']:.1f} ms",
            f"{single['errors']:.0f}",
        ],
        [
            f"batches of 500, one at a time, {n_batches} batches",
            f"{batch['per_s']:,.0f} packages/s",
            f"{batch['batch_p50_ms']:.0f} ms per batch",
            f"{batch['batch_max_ms']:.0f} ms per batch (max)",
            f"{batch['errors']:.0f}",
        ],
    ]
    body = (
        "`python bench/api.py` — `POST /v1/packages` against `python -m controller.api.server` (uvicorn, one "
        "process) over the example station with a fresh SQLite store; no vehicles connected, so every "
        "package takes the whole intake path (validate, store, plan with routes and zones, store the van "
        "decision, answer). Load from httpx async clients in a second process on the same machine. "
        "A POST answers after its package is stored and planned; concurrent POSTs share one store "
        "commit (group commit) and one planning pass. The issue's aims (1,000 single POSTs/s with p99 "
        "< 50 ms; 10,000 packages/s in batches) are not met: in-process the service takes about 430 "
        "single submissions/s from 32 concurrent callers, so the rest goes to HTTP, validation and JSON "
        "in one uvicorn process sharing 2 cores with the load generator.\n\n"
        + table(["load", "throughput", "p50", "p99", "errors"], rows)
        + f"\n\nMachine: {machine()}."
    )
    write_section("api", "API intake", body)


if __name__ == "__main__":
    main()
