"""Run every benchmark in `bench/`, one after another, and put the machine and total time in the doc.

    python bench/run_all.py [--quick] [--only day,vans] [--timeout SECONDS]

Each benchmark is its own subprocess (so one's event loops, child processes and memory cannot colour the
next one's figures) and writes its own section of docs/benchmarks.md. Some write nothing with `--quick`
(their quick run is a smoke test); their sections keep the last full run's figures. This script then
writes a header line at the top of the doc (machine, date, total time, each script's time and exit
status) and the full run's time into the `day` section's marker. A benchmark that fails or times out is
reported and the others still run; the exit status is non-zero when any failed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import DOC, HEADER, machine

BENCH = Path(__file__).resolve().parent
SCRIPTS = ("assign.py", "mavlink_fleet.py", "mqtt_fleet.py", "api.py", "vans.py", "day.py", "failover.py")
START, END = "<!-- bench:run_all -->", "<!-- /bench:run_all -->"
# The day section keeps the last full and the last quick total between these markers.
DAY_MARKS = {
    quick: re.compile(rf"(<!-- run_all:{k} -->)(.*?)(<!-- /run_all:{k} -->)", re.S)
    for quick, k in ((False, "time"), (True, "quick"))
}


def run(script: str, quick: bool, timeout_s: float) -> tuple[float, str]:
    """Run one benchmark; returns its wall time and 'ok', 'exit N' or 'timeout'."""
    cmd = [sys.executable, str(BENCH / script), *(["--quick"] if quick else [])]
    print(f"== {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    try:
        rc = subprocess.run(cmd, cwd=BENCH.parent, timeout=timeout_s, check=False).returncode
        status = "ok" if rc == 0 else f"exit {rc}"
    except subprocess.TimeoutExpired:
        status = "timeout"
    wall = time.perf_counter() - t0
    print(f"== {script}: {status} in {wall:.0f} s", flush=True)
    return wall, status


def header(times: dict[str, tuple[float, str]], total_s: float, quick: bool) -> str:
    parts = ", ".join(f"`{s}` {t:.0f} s{'' if st == 'ok' else f' ({st})'}" for s, (t, st) in times.items())
    how = "python bench/run_all.py" + (" --quick" if quick else "")
    return (
        f"{START}\nLast `{how}`: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"**{total_s / 60:.1f} min** in all ({parts}) on {machine()}.\n{END}"
    )


def write_header(block: str, total_s: float, quick: bool) -> None:
    """Put (or replace) the run line just under the doc's title paragraph; note the time in `day`."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        cut = text.find("\n\n", text.find("\n\n") + 2)
        text = text + "\n" + block + "\n" if cut < 0 else text[:cut] + "\n\n" + block + text[cut:]
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    note = f"`python bench/run_all.py{' --quick' if quick else ''}` took {total_s / 60:.1f} min ({when})"
    text = DAY_MARKS[quick].sub(lambda m: m.group(1) + note + m.group(3), text)
    DOC.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--only", help="comma-separated script names (default: all)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per benchmark")
    args = parser.parse_args()
    scripts = (
        [s if s.endswith(".py") else f"{s}.py" for s in args.only.split(",")] if args.only else list(SCRIPTS)
    )
    timeout_s = args.timeout or (900.0 if args.quick else 3600.0)
    t0 = time.perf_counter()
    times = {s: run(s, args.quick, timeout_s) for s in scripts}
    total = time.perf_counter() - t0
    write_header(header(times, total, args.quick), total, args.quick)
    print(f"all done in {total / 60:.1f} min; header written to {DOC}")
    return 0 if all(st == "ok" for _, st in times.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
