"""How many VDA 5050 robots one controller holds at 1 state/s each, and how fast it sees their states.

    python bench/mqtt_fleet.py            # 100, 500, 1000, 2000 robots, 30 s windows
    python bench/mqtt_fleet.py --quick    # 100 and 1000 robots, 10 s windows (< 2 min)

Set-up, all on this machine: a mosquitto from `sitl.broker` (auth + ACL, as in production), a child
process with N simulated robots (one MQTT client, login and last will each; `sitl.robot`), and in this
process one `FleetLink` (one MQTT client for the whole fleet, schema validation on). Latency is measured
per message: the robot process notes the wall time at each state publish, the controller the wall time
its view of that robot was updated (the `state` event); both keyed by (serialNumber, headerId).
A fleet size "holds" when >= 99 % of states are applied and p99 latency stays under 1 s.
Figures go into the `## MQTT fleet` section of docs/benchmarks.md (between the bench markers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sitl.broker import Broker  # noqa: E402
from sitl.robot import RobotFleet, SimRobot  # noqa: E402
from vehicles.vda5050 import FleetLink  # noqa: E402

MANUFACTURER = "bench"
START, END = "<!-- bench:mqtt_fleet -->", "<!-- /bench:mqtt_fleet -->"


def serials(count: int) -> list[str]:
    return [f"b{i:04d}" for i in range(count)]


# ---- robot side (child process) ----------------------------------------------------------------
async def robot_side(names: list[str], port: int, credentials: Path, duration: float, out: Path) -> None:
    table = json.loads(await asyncio.to_thread(credentials.read_text))
    logins = {s: (s, table[s]) for s in names}
    published: list[tuple[str, int, float]] = []

    def note(serial: str, sub: str, header_id: int, at: float) -> None:
        if sub == "state":
            published.append((serial, header_id, at))

    sims = [SimRobot(s, manufacturer=MANUFACTURER) for s in names]
    fleet = RobotFleet(
        sims, "127.0.0.1", port, credentials=logins, state_interval_s=1.0, keepalive=30, on_publish=note
    )
    await fleet.start(timeout_s=120)
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go" from the parent
    started = time.time()
    await asyncio.sleep(duration + 2.0)  # the controller's window plus a margin for messages in flight
    report = json.dumps({"go": line.strip(), "started": started, "published": published})
    await asyncio.to_thread(out.write_text, report)
    print("done", flush=True)  # the parent waits for this line, not for our exit
    await fleet.stop()


# ---- controller side ---------------------------------------------------------------------------
async def measure(count: int, duration: float) -> dict[str, float]:
    names = serials(count)
    async with Broker(robots=names, manufacturer=MANUFACTURER, kind="mosquitto") as broker:
        with tempfile.TemporaryDirectory() as tmp:
            creds = Path(tmp) / "credentials.json"
            creds.write_text(json.dumps({s: broker.credentials(s)[1] for s in names}))
            user, password = broker.controller_credentials()
            async with FleetLink(broker.host, broker.port, username=user, password=password) as link:
                robots = {s: link.add_robot(s, manufacturer=MANUFACTURER) for s in names}
                await link.wait_connected()
                received: list[tuple[str, int, float]] = []
                stream = link.events(maxsize=1_000_000)
                window = {"open": False}

                async def collect() -> None:
                    async for event in stream:
                        if event.kind == "state" and window["open"]:
                            received.append((event.serial_number or "", event.data["header_id"], event.at))

                collector = asyncio.create_task(collect())
                # robots in several processes when there are many, so the simulator is not the bottleneck
                procs = max(1, min(os.cpu_count() or 1, -(-count // 1000)))
                groups = [names[i::procs] for i in range(procs)]
                outs = [Path(tmp) / f"published-{i}.json" for i in range(procs)]
                children = [
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        __file__,
                        "--robot-side",
                        "--names",
                        ",".join(group),
                        "--port",
                        str(broker.port),
                        "--credentials",
                        str(creds),
                        "--duration",
                        str(duration),
                        "--out",
                        str(path),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                    )
                    for group, path in zip(groups, outs, strict=True)
                ]
                try:
                    for child in children:
                        assert child.stdout is not None
                        ready = await asyncio.wait_for(child.stdout.readline(), 180)
                        if not ready.startswith(b"ready"):
                            raise RuntimeError(f"robot process failed: {ready!r}")
                    await asyncio.wait_for(_all_seen(robots), 60)
                    window["open"] = True
                    cpu0, t0 = time.process_time(), time.time()
                    for child in children:
                        assert child.stdin is not None
                        child.stdin.write(b"go\n")
                        await child.stdin.drain()
                    await asyncio.sleep(duration)
                    cpu1, t1 = time.process_time(), time.time()
                    window["open"] = False
                    for child in children:
                        assert child.stdout is not None
                        done = await asyncio.wait_for(child.stdout.readline(), 60)
                        if not done.startswith(b"done"):
                            raise RuntimeError(f"robot process did not report: {done!r}")
                finally:
                    for child in children:
                        if child.returncode is None:
                            child.kill()
                        await child.wait()
                    collector.cancel()
                    stream.close()
                stats = link.stats
            published = []
            for path in outs:
                published += json.loads(await asyncio.to_thread(path.read_text))["published"]
    sent = {(s, h): t for s, h, t in published if t0 <= t <= t1 - 1.0}  # sent inside the window
    got = {(s, h): t for s, h, t in received}
    lat = np.array([got[k] - t for k, t in sent.items() if k in got]) * 1000.0
    return {
        "robots": count,
        "window_s": round(t1 - t0, 1),
        "sent": len(sent),
        "applied": int(lat.size),
        "applied_per_s": round(len(received) / (t1 - t0), 1),
        "lost_pct": round(100.0 * (1 - lat.size / max(1, len(sent))), 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else float("nan"),
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else float("nan"),
        "cpu_pct": round(100.0 * (cpu1 - cpu0) / (t1 - t0), 1),
        "malformed": sum(stats.malformed.values()),
        "robot_procs": procs,
    }


async def _all_seen(robots: dict) -> None:
    for robot in robots.values():
        await robot.wait_until(lambda r: r.view is not None, timeout_s=60)


def holds(row: dict[str, float]) -> bool:
    return row["lost_pct"] <= 1.0 and row["p99_ms"] < 1000.0


def write_section(rows: list[dict[str, float]], quick: bool) -> Path:
    path = REPO / "docs" / "benchmarks.md"
    mosquitto = subprocess.run(["/usr/sbin/mosquitto", "-h"], capture_output=True, text=True, check=False)
    version = (
        (mosquitto.stdout or mosquitto.stderr).splitlines()[0] if mosquitto.returncode in (0, 3) else "?"
    )
    how = f"`python bench/mqtt_fleet.py{' --quick' if quick else ''}`"
    lines = [
        START,
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with {how} on {os.cpu_count()} CPU cores",
        f"({platform.machine()}, Python {platform.python_version()}, {version.strip()}).",
        "Robots run in child processes (one per 1,000; one MQTT client each, own login and last will); the",
        "controller's FleetLink (one MQTT client, wildcard subscriptions, all states schema-checked) in the",
        "parent process.",
        "VDA 5050 2.1.0 state at 1 Hz per robot. Latency: robot publish -> controller's view updated.",
        "",
        "| robots | window s | states sent | applied | applied/s | lost % | p50 ms | p99 ms "
        "| controller CPU % | holds |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        cells = [r["robots"], r["window_s"], r["sent"], r["applied"], r["applied_per_s"], r["lost_pct"]]
        cells += [r["p50_ms"], r["p99_ms"], r["cpu_pct"], "yes" if holds(r) else "no"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    best = max((r["robots"] for r in rows if holds(r)), default=0)
    lines += [
        "",
        f"One controller holds at least **{best}** robots at 1 state/s on this machine. The controller's own",
        "CPU stays low; latency and `applied/s` below the robot count come from the simulated robots",
        "(all in one or two Python processes) and mosquitto competing for the same cores, and from other",
        "jobs on a shared machine: the latency clock starts in the robot process before the send.",
        END,
    ]
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n## MQTT fleet\n\n" + block + "\n"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (< 2 min)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="e.g. 100,1000")
    parser.add_argument("--duration", type=float, help="measurement window per size, s")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    parser.add_argument("--robot-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--credentials", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.robot_side:
        asyncio.run(robot_side(args.names.split(","), args.port, args.credentials, args.duration, args.out))
        return
    sizes = args.sizes or ([100, 1000] if args.quick else [100, 500, 1000, 2000])
    duration = args.duration or (10.0 if args.quick else 30.0)
    rows = []
    for size in sizes:
        row = asyncio.run(measure(size, duration))
        rows.append(row)
        print(json.dumps(row | {"holds": holds(row)}), flush=True)
    if not args.no_write:
        print(f"wrote {write_section(rows, args.quick)}")


if __name__ == "__main__":
    main()
