"""Words an operator can trust (issue 20, part 2): `assign` output whole and with every time's date and
zone, and an end-of-day report that accounts for every package it received."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from controller.packages import PackageIn
from controller.packages import PackageState as S
from controller.report import period_report, report_table
from controller.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tolleson"
AT = "2026-12-01T16:00:00Z"


@pytest.mark.slow  # a subprocess planning 300 packages: about 5 s
def test_assign_piped_prints_each_package_whole_with_times_in_the_stations_zone(tmp_path: Path) -> None:
    """`lastmile assign | less`: rich squeezed the table into 80 columns, the reasons a word a line, and the
    ETAs had neither date nor zone. The station file names its zone here; without one it is UTC."""
    station = tmp_path / "station.toml"
    station.write_text(
        (EXAMPLE / "station.toml").read_text() + '\n[notifications]\ntime_zone = "America/Phoenix"\n'
    )
    (tmp_path / "zones.geojson").write_text((EXAMPLE / "zones.geojson").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "controller", "assign", str(EXAMPLE / "packages.csv"),
         "--station", str(station), "--at", AT],
        capture_output=True, text=True, timeout=120, env={"PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Tolleson AZ (example): 300 packages, planned at 2026-12-01 09:00 MST"  # 16:00 UTC
    assert lines[1].split("\t") == [
        "package", "decision", "vehicle", "ETA", "energy Wh", "margin Wh", "reasons / hints",
    ]  # fmt: skip
    rows = [line.split("\t") for line in lines[2:] if "\t" in line]
    assert len(rows) == 40 and all(len(row) == 7 for row in rows)  # the default --limit
    assert "… 260 more (use --limit 0 or --json)" in result.stdout
    etas = [row[3] for row in rows if row[3]]
    assert etas and all(re.fullmatch(r"2026-12-0\d \d\d:\d\d MST", eta) for eta in etas), etas
    van = next(row for row in rows if row[1] == "van")
    assert re.search(r"beyond the (drone|robot) radius \(\d+\.\d mi\)", van[6]), van  # hints whole
    assert max(len(line) for line in lines) > 100  # not cut to the 80 columns of a pipe
    assert re.search(r"^van reasons: .*outside_operating_area \d+$", result.stdout, re.MULTILINE)


def _deliver(store: Store, package_id: str, vehicle: str, *, to: S = S.DELIVERED) -> None:
    store.transition(package_id, S.ASSIGNED, reason="assigned", vehicle_id=vehicle, mode="drone")
    store.transition(package_id, S.LAUNCHING, reason="launching")
    store.transition(package_id, S.EN_ROUTE, reason="en route")
    if to is not S.EN_ROUTE:
        store.transition(package_id, to, reason="delivered")


def test_the_report_accounts_for_every_package_received(tmp_path: Path) -> None:
    """40 received, 18 delivered and 21 van in the demo's report: the one still en route was not shown."""
    store = Store(f"sqlite:///{tmp_path / 'day.sqlite3'}")
    try:
        ids = [
            store.submit(PackageIn(key=f"k{i}", weight=1.0, dest_lat=33.45, dest_lon=-112.25))[0].id
            for i in range(6)
        ]
        start = datetime.now(UTC) - timedelta(minutes=1)
        _deliver(store, ids[0], "d1")
        _deliver(store, ids[1], "d2")
        store.transition(ids[2], S.VAN, reason="at intake", reasons=["overweight"])
        _deliver(store, ids[3], "d3", to=S.EN_ROUTE)  # still flying when the day ends
        _deliver(store, ids[4], "d4", to=S.FAILED)  # came back; not planned again yet
        # ids[5]: still waiting at the station
        report = period_report(store, start, datetime.now(UTC) + timedelta(seconds=1))
    finally:
        store.close()

    accounting = report["accounting"]
    assert accounting == {
        "received": 6, "delivered": 2, "van": 1, "cancelled": 0, "failed": 1, "still_out": 2,
        "still_out_by_state": {"en_route": 1, "received": 1},
    }  # fmt: skip
    parts = ("delivered", "van", "cancelled", "failed", "still_out")
    assert sum(accounting[k] for k in parts) == report["received"] == 6
    console = Console(file=io.StringIO(), width=100, record=True, color_system=None)
    console.print(report_table(report, "the day"))
    text = console.export_text()
    rows = dict(re.findall(r"│\s+(\S.*?)\s+│\s+(\S.*?) │", text))
    assert rows["received"] == "6"
    assert rows["of which delivered"] == "2"
    assert rows["handed to a van"] == "1"
    assert rows["failed, not yet planned again"] == "1"
    assert rows["not finished yet"] == "2"
    assert rows["en route"] == rows["waiting at the station"] == "1"
    assert "cancelled" not in rows  # a state nobody is in is left out (delivered, van, not finished: always)
