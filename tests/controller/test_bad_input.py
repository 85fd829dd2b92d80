"""Bad input an operator really hands the CLI and the API (issue 20): each one gets an error naming the field
and the reason, exit code 2 (422 over HTTP), no traceback, and nothing written or stored.

The CLI runs in this process through typer's CliRunner (the same app object the console script runs); the
API is the real app served over HTTP on a free port (`ApiThread`), with a real SQLite store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from controller.api.server import ApiThread
from controller.cli import app
from tests.api.helpers import ROLE_TOKEN, package, station_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tolleson"
AT = "2026-12-01T16:00:00Z"
runner = CliRunner()


def lastmile(*args: str, token: str | None = None) -> tuple[int, str, str]:
    env = {"COLUMNS": "200", **({"LASTMILE_TOKEN": token} if token else {})}
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is the bug these tests are about: show it whole
    return result.exit_code, result.stdout, result.stderr


def assign(csv: Path, *more: str) -> tuple[int, str, str]:
    return lastmile("assign", str(csv), "--station", str(EXAMPLE / "station.toml"), "--at", AT, *more)


# --- CSV encodings --------------------------------------------------------------------------------------


def test_a_windows_1252_csv_is_read_and_the_encoding_said(tmp_path: Path) -> None:
    csv = tmp_path / "excel.csv"
    csv.write_bytes(
        "key,weight_kg,lat,lon,recipient\nA-1,1.2,33.45,-112.25,Zoë Müller café\n".encode("cp1252")
    )
    out = tmp_path / "decisions.json"
    code, _, stderr = assign(csv, "--json", str(out))
    assert code == 0, stderr
    assert "read as Windows-1252" in stderr
    assert [d["package_id"] for d in json.loads(out.read_text())] == ["A-1"]


def test_utf8_with_bom_and_utf16_are_read_silently(tmp_path: Path) -> None:
    text = "key,weight_kg,lat,lon,recipient\nA-1,1.2,33.45,-112.25,Zoë\n"
    for name, data in (("bom.csv", text.encode("utf-8-sig")), ("utf16.csv", text.encode("utf-16"))):
        csv = tmp_path / name
        csv.write_bytes(data)
        code, stdout, stderr = assign(csv)
        assert code == 0, stderr
        assert "A-1" in stdout and "not UTF-8" not in stderr


def test_a_file_in_no_known_encoding_is_refused_naming_the_encodings(tmp_path: Path) -> None:
    csv = tmp_path / "odd.csv"
    csv.write_bytes(b"key,weight_kg,lat,lon\nA\x81\x8d,1,33.45,-112.25\n")  # 0x81 is unassigned in cp1252
    out = tmp_path / "decisions.json"
    code, stdout, stderr = assign(csv, "--json", str(out))
    assert code == 2
    assert "neither UTF-8 nor Windows-1252" in stderr and "0x81" in stderr and "'file'" in stderr
    assert not out.exists() and stdout == ""


# --- blank or missing weight units ----------------------------------------------------------------------


def test_a_blank_weight_unit_is_refused_not_taken_as_kilograms(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("key,weight,weight_unit,lat,lon\nA-1,2,lb,33.45,-112.25\nA-2,2,,33.45,-112.25\n")
    code, stdout, stderr = assign(csv)
    assert code == 2 and stdout == ""
    assert "row 3" in stderr and "'weight_unit'" in stderr and "blank" in stderr


def test_a_weight_column_without_a_unit_column_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("key,weight,lat,lon\nA-1,2,33.45,-112.25\n")
    code, _, stderr = assign(csv)
    assert code == 2 and "'weight_unit'" in stderr and "weight_kg or weight_lb" in stderr


# --- deadlines already past -----------------------------------------------------------------------------


def test_a_past_deadline_is_refused_by_assign_unless_allowed(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text(
        "key,weight_kg,lat,lon,deadline\n"
        "A-1,1,33.45,-112.25,2026-12-01T18:00:00Z\n"
        "A-2,1,33.45,-112.25,2019-12-01T18:00:00Z\n"
    )
    out = tmp_path / "decisions.json"
    code, stdout, stderr = assign(csv, "--json", str(out))
    assert code == 2 and stdout == "" and not out.exists()
    assert "row 3" in stderr and "'deadline'" in stderr and "already past" in stderr
    assert "--allow-late" in stderr
    code, _, stderr = assign(csv, "--json", str(out), "--allow-late")
    assert code == 0, stderr
    assert len(json.loads(out.read_text())) == 2


# --- assign --json into a folder that is not there ------------------------------------------------------


def test_assign_json_into_a_missing_folder_fails_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "out.json"
    code, stdout, stderr = assign(EXAMPLE / "packages.csv", "--json", str(out))
    assert code == 2
    assert stdout == ""  # refused before the table, not with a traceback after it
    assert "'--json'" in stderr and "does not exist" in stderr and str(out.parent) in stderr
    assert not out.parent.exists()


# --- zone files -----------------------------------------------------------------------------------------


def _zones(path: Path, features: list[dict], **top: object) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", **top, "features": features}))
    return path


def _disc(zid: str, lon: float, lat: float, radius_m: float) -> dict:
    geometry = {"type": "Point", "coordinates": [lon, lat]}
    return {
        "type": "Feature",
        "id": zid,
        "geometry": geometry,
        "properties": {"kind": "no_fly", "radius_m": radius_m},
    }


def test_zones_check_checks_the_station_against_the_given_file(tmp_path: Path) -> None:
    # The example station's own zones leave it clear; the file checked here puts a no-fly zone on top of it.
    over = _zones(tmp_path / "over.geojson", [_disc("over-the-station", -112.256, 33.44, 800)])
    code, stdout, stderr = lastmile("zones", "check", str(over), "--station", str(EXAMPLE / "station.toml"))
    assert code == 2
    assert "over-the-station" in stderr and str(over) in stderr and "'station'" in stderr
    clear = _zones(tmp_path / "clear.geojson", [_disc("far-away", -112.0, 33.6, 800)])
    code, stdout, stderr = lastmile("zones", "check", str(clear), "--station", str(EXAMPLE / "station.toml"))
    assert code == 0, stderr
    assert "outside every exclusion zone" in stdout and "far-away" in stdout


def test_a_crs_member_naming_another_crs_is_refused(tmp_path: Path) -> None:
    web_mercator = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    bad = _zones(tmp_path / "merc.geojson", [_disc("z", -112.0, 33.6, 500)], crs=web_mercator)
    code, _, stderr = lastmile("zones", "check", str(bad))
    assert code == 2 and "'crs'" in stderr and "EPSG::3857" in stderr and "WGS84" in stderr
    crs84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    good = _zones(tmp_path / "crs84.geojson", [_disc("z", -112.0, 33.6, 500)], crs=crs84)
    code, _, stderr = lastmile("zones", "check", str(good))
    assert code == 0, stderr


def test_an_out_of_range_coordinate_is_printed_whole_and_plain(tmp_path: Path) -> None:
    # Metres where degrees belong: the message keeps its square brackets and shows plain numbers.
    square = [[740000.0, 33.4], [740100.0, 33.4], [740100.0, 33.5], [740000.0, 33.4]]
    feature = {"type": "Feature", "id": "metres", "geometry": {"type": "Polygon", "coordinates": [square]},
               "properties": {"kind": "no_fly"}}  # fmt: skip
    code, _, stderr = lastmile("zones", "check", str(_zones(tmp_path / "m.geojson", [feature])))
    assert code == 2
    assert "coordinate [740000.0, 33.4] is out of range" in stderr
    assert "GeoJSON order is [longitude, latitude]" in stderr
    assert "np.float64" not in stderr


# --- the API: past deadlines ----------------------------------------------------------------------------


@pytest.fixture
def op(tmp_path: Path) -> Iterator[httpx.Client]:
    with ApiThread(station_config(), f"sqlite:///{tmp_path / 'store.sqlite3'}") as api:
        headers = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
            yield client


def _stored(client: httpx.Client) -> int:
    return sum(client.get("/v1/fleet").json()["queue"].values())


def test_the_api_refuses_a_past_deadline_unless_the_batch_allows_it(op: httpx.Client) -> None:
    past = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    answer = op.post("/v1/packages", json=package("late-1", deadline=past))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (
        error["field"] == "deadline" and "already past" in error["reason"] and "allow_late" in error["reason"]
    )
    batch = {"packages": [package("ok-1", deadline=soon), package("late-2", deadline=past)]}
    answer = op.post("/v1/packages", json=batch)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "packages.1.deadline"
    assert _stored(op) == 0  # all or none: the good package of the batch was not stored either
    answer = op.post("/v1/packages", json={**batch, "allow_late": "yes"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "allow_late"
    answer = op.post("/v1/packages", json={**batch, "allow_late": True})
    assert answer.status_code == 201, answer.text
    assert _stored(op) == 2


def test_import_refuses_a_past_deadline_before_sending_anything(op: httpx.Client, tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text(
        "key,weight_kg,lat,lon,deadline\n"
        f"A-1,1,33.45,-112.25,{(datetime.now(UTC) + timedelta(hours=2)).isoformat()}\n"
        "A-2,1,33.45,-112.25,2019-12-01T18:00:00Z\n"
    )
    url = str(op.base_url)
    code, _, stderr = lastmile("import", str(csv), "--url", url, token=ROLE_TOKEN["operator"])
    assert code == 2 and "row 3" in stderr and "'deadline'" in stderr and "--allow-late" in stderr
    assert _stored(op) == 0
    code, stdout, stderr = lastmile(
        "import", str(csv), "--url", url, "--allow-late", token=ROLE_TOKEN["operator"]
    )
    assert code == 0, stderr
    assert "2 packages, 2 new" in stdout and _stored(op) == 2


def test_submit_refuses_a_past_deadline_unless_allowed(op: httpx.Client) -> None:
    args = ["submit", "--key", "walk-in", "--weight", "2", "--unit", "lb", "--lat", "33.45",
            "--lon", "-112.25", "--deadline", "2019-12-01T18:00:00Z", "--url", str(op.base_url)]  # fmt: skip
    code, _, stderr = lastmile(*args, token=ROLE_TOKEN["operator"])
    assert code == 2 and "deadline" in stderr and "already past" in stderr
    assert _stored(op) == 0
    code, stdout, stderr = lastmile(*args, "--allow-late", token=ROLE_TOKEN["operator"])
    assert code == 0, stderr
    assert "walk-in" in stdout and _stored(op) == 1
