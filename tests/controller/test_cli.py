"""The `lastmile` CLI as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tolleson"
AT = "2026-12-01T16:00:00Z"


def lastmile(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lastmile", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "controller"]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={"COLUMNS": "200", "PATH": str(Path(sys.executable).parent)},
    )


def test_assign_example_station(tmp_path: Path) -> None:
    out = tmp_path / "decisions.json"
    result = lastmile(
        "assign",
        str(EXAMPLE / "packages.csv"),
        "--station",
        str(EXAMPLE / "station.toml"),
        "--at",
        AT,
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    decisions = json.loads(out.read_text())
    assert len(decisions) == 300
    modes = {d["mode"] for d in decisions}
    assert modes == {"drone", "robot", "van"}
    vans = [d for d in decisions if d["mode"] == "van"]
    assert all(d["reasons"] and d["hints"] for d in vans)
    reasons = {r for d in vans for r in d["reasons"]}
    assert {"overweight", "out_of_range", "exclusion_zone"} <= reasons
    assert any(d["detoured"] for d in decisions if d["mode"] == "drone")
    # no drone assignment goes to the offline drone d8
    assert all(d["vehicle_id"] != "d8" for d in decisions)
    assert "van reasons:" in result.stdout


def test_assign_refuses_bad_csv_and_names_row_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("key,weight_kg,lat,lon\nok,1,33.45,-112.25\nbroken,-3,33.45,-112.25\n")
    result = lastmile("assign", str(bad), "--station", str(EXAMPLE / "station.toml"), "--at", AT)
    assert result.returncode == 2
    assert "row 3" in result.stderr and "weight" in result.stderr


def test_assign_refuses_naive_at() -> None:
    result = lastmile(
        "assign",
        str(EXAMPLE / "packages.csv"),
        "--station",
        str(EXAMPLE / "station.toml"),
        "--at",
        "2026-12-01T16:00:00",
    )
    assert result.returncode != 0 and "time zone" in result.stderr


def test_zones_check_summarises_example() -> None:
    result = lastmile(
        "zones", "check", str(EXAMPLE / "zones.geojson"), "--station", str(EXAMPLE / "station.toml")
    )
    assert result.returncode == 0, result.stderr
    for zone_id in ("phx-class-b", "gyr-class-d", "luf-class-d", "stadium-tfr", "robot-area", "i10-freeway"):
        assert zone_id in result.stdout
    assert "outside every exclusion zone" in result.stdout


def test_zones_check_names_the_bad_feature(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bowtie = [[0, 0], [2, 2], [2, 0], [0, 1], [0, 0]]
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "id": "bowtie",
                        "geometry": {"type": "Polygon", "coordinates": [bowtie]},
                        "properties": {"kind": "no_fly"},
                    }
                ],
            }
        )
    )
    result = lastmile("zones", "check", str(bad))
    assert result.returncode == 2
    assert "bowtie" in result.stderr and "intersect" in result.stderr.lower()


def test_station_inside_an_exclusion_zone_is_refused(tmp_path: Path) -> None:
    zones = tmp_path / "zones.geojson"
    zones.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "id": "over-station",
                        "geometry": {"type": "Point", "coordinates": [-112.256, 33.44]},
                        "properties": {"kind": "no_fly", "radius_m": 500},
                    }
                ],
            }
        )
    )
    station = tmp_path / "station.toml"
    station.write_text(f'name = "x"\nlat = 33.44\nlon = -112.256\nzones_file = "{zones.name}"\n')
    result = lastmile("zones", "check", str(zones), "--station", str(station))
    assert result.returncode == 2
    assert "over-station" in result.stderr and "station" in result.stderr


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('name = "x"\nlat = 133.44\nlon = -112.256\n', "lat"),
        ('name = "x"\nlat = 33.44\nlon = -112.256\n[[fleet]]\nid = "d1"\nkind = "blimp"\n', "kind"),
        (
            'name = "x"\nlat = 33.44\nlon = -112.256\n[[fleet]]\nid = "d1"\nkind = "drone"\ncharge = 1.5\n',
            "charge",
        ),
        (
            'name = "x"\nlat = 33.44\nlon = -112.256\n[[fleet]]\nid = "d1"\nkind = "drone"\n'
            '[[fleet]]\nid = "d1"\nkind = "robot"\n',
            "twice",
        ),
        ('name = "x"\nlat = ', "TOML"),
    ],
)
def test_bad_station_file(tmp_path: Path, toml: str, words: str) -> None:
    station = tmp_path / "station.toml"
    station.write_text(toml)
    result = lastmile("assign", str(EXAMPLE / "packages.csv"), "--station", str(station), "--at", AT)
    assert result.returncode == 2
    assert words in result.stderr


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts threads through Linux's /proc")
def test_a_controller_process_starts_no_blas_threads() -> None:
    """numpy's and scipy's OpenBLAS threads spin after each call; the controller's matrices are too small."""
    probe = "import os, controller, numpy, scipy.optimize; print(len(os.listdir('/proc/self/task')))"
    env = {"PATH": str(Path(sys.executable).parent)}
    ours = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert ours.stdout.strip() == "1"
    chosen = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "OPENBLAS_NUM_THREADS": "2"},
    )
    assert int(chosen.stdout) > 1  # a value the user set is kept
