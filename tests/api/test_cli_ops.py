"""The operator commands (`lastmile status`, `submit`, `import`, `ground`, ...) against a running API."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from controller import cli_ops
from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN

app = typer.Typer()
cli_ops.register(app)
runner = CliRunner()


def lastmile(api: ApiThread, *args: str, role: str = "operator") -> tuple[int, str]:
    result = runner.invoke(
        app, [*args, "--url", api.url], env={"LASTMILE_TOKEN": ROLE_TOKEN[role], "COLUMNS": "200"}
    )
    return result.exit_code, result.output


def test_commands_are_registered_under_their_names() -> None:
    names = {c.name for c in app.registered_commands}
    assert names == {
        "status", "watch", "submit", "import", "launch", "abort", "ground", "unground", "close", "open",
        "report",
    }  # fmt: skip


def test_status_prints_fleet_and_queue(api: ApiThread) -> None:
    code, out = lastmile(api, "status")
    assert code == 0, out
    assert "fleet" in out and "packages by state" in out
    for vehicle in ("d1", "d2", "r1", "v1"):
        assert vehicle in out


def test_submit_prints_the_decision(api: ApiThread) -> None:
    code, out = lastmile(
        api, "submit", "--key", "cli-1", "--weight", "3", "--unit", "lb", "--lat", "33.45", "--lon", "-112.25"
    )
    assert code == 0, out
    assert "cli-1" in out and "no_vehicle_available" in out
    assert api.store.get_by_key("cli-1") is not None


def test_submit_bad_input_names_the_field_and_stores_nothing(api: ApiThread) -> None:
    code, out = lastmile(
        api, "submit", "--key", "cli-bad", "--weight", "-3", "--lat", "33.45", "--lon", "-112.25"
    )
    assert code == 2
    assert "weight" in out and "greater than zero" in out
    assert api.store.get_by_key("cli-bad") is None


def test_import_submits_a_csv_as_one_batch(api: ApiThread, tmp_path: Path) -> None:
    csv = tmp_path / "today.csv"
    csv.write_text("key,weight_lb,lat,lon\nc-1,2,33.45,-112.25\nc-2,4,33.46,-112.24\nc-3,40,33.47,-112.23\n")
    code, out = lastmile(api, "import", str(csv))
    assert code == 0, out
    assert "3 packages, 3 new" in out
    assert all(api.store.get_by_key(k) is not None for k in ("c-1", "c-2", "c-3"))
    code, out = lastmile(api, "import", str(csv))  # a retry of the same file changes nothing
    assert code == 0 and "3 packages, 0 new" in out


def test_import_with_a_bad_row_imports_nothing(api: ApiThread, tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("key,weight_lb,lat,lon\nb-1,2,33.45,-112.25\nb-2,2,133.46,-112.24\n")
    code, out = lastmile(api, "import", str(csv))
    assert code == 2 and "lat" in out
    assert api.store.get_by_key("b-1") is None


def test_ground_and_unground_change_the_fleet_state(api: ApiThread) -> None:
    code, out = lastmile(api, "ground", "--reason", "thunderstorm")
    assert code == 0 and "thunderstorm" in out
    assert api.service.grounded == "thunderstorm"
    code, out = lastmile(api, "status")
    assert "FLEET GROUNDED" in out and "thunderstorm" in out
    code, out = lastmile(api, "unground")
    assert code == 0 and "released" in out
    assert api.service.grounded is None


def test_viewer_cannot_ground(api: ApiThread) -> None:
    code, out = lastmile(api, "ground", role="viewer")
    assert code == 2 and "403" in out and "operator's token" in out
    assert api.service.grounded is None


def test_without_a_token_the_error_says_how_to_give_one(api: ApiThread) -> None:
    result = runner.invoke(app, ["status", "--url", api.url], env={"LASTMILE_TOKEN": "", "COLUMNS": "200"})
    assert result.exit_code == 2 and "401" in result.output
    assert "--token" in result.output and "LASTMILE_TOKEN" in result.output


def test_square_brackets_in_a_reason_are_printed_as_they_are(api: ApiThread) -> None:
    """Rich took "[lon, lat]"-like words in reasons for markup and dropped them."""
    code, out = lastmile(api, "abort", "m-[x]")
    assert code == 2 and "m-[x]" in out


def test_close_and_open_the_station_to_drones(api: ApiThread) -> None:
    code, out = lastmile(api, "close", "--reason", "pads blocked")
    assert code == 0 and "pads blocked" in out
    assert api.service.station_closed == "pads blocked"
    code, out = lastmile(api, "status")
    assert "STATION CLOSED" in out and "pads blocked" in out
    code, out = lastmile(api, "close", role="viewer")
    assert code == 2 and "403" in out
    code, out = lastmile(api, "open")
    assert code == 0 and "open" in out
    assert api.service.station_closed is None
    assert "STATION CLOSED" not in lastmile(api, "status")[1]


def test_launch_and_abort_unknown_missions_fail_clearly(api: ApiThread) -> None:
    for command in ("launch", "abort"):
        code, out = lastmile(api, command, "m-unknown")
        assert code == 2 and "404" in out and "m-unknown" in out


def test_report_prints_the_figures(api: ApiThread) -> None:
    lastmile(api, "submit", "--key", "rep-1", "--weight", "30", "--lat", "33.45", "--lon", "-112.25")
    code, out = lastmile(api, "report")
    assert code == 0, out
    for words in (
        "delivered",
        "on time",
        "median delivery time",
        "van fallbacks",
        "overweight",
        "energy used",
    ):
        assert words in out
    code, out = lastmile(api, "report", "--day", "22/11/2026")
    assert code == 2


def test_launch_takes_one_mission_or_all_ready(api: ApiThread) -> None:
    code, out = lastmile(api, "launch")
    assert code == 2 and "MISSION" in out and "--all-ready" in out
    code, out = lastmile(api, "launch", "m-1", "--all-ready")
    assert code == 2 and "not both" in out
    code, out = lastmile(api, "launch", "--all-ready")  # nothing planned at this station: nothing held
    assert code == 0 and "no mission is waiting for a launch" in out
    code, out = lastmile(api, "launch", "no-such-mission")
    assert code == 2 and "404" in out


def test_unreachable_server_exits_1() -> None:
    result = runner.invoke(app, ["status", "--url", "http://127.0.0.1:9"], env={"LASTMILE_TOKEN": "x"})
    assert result.exit_code == 1
    assert "cannot reach" in result.output


def test_watch_refuses_a_dispatcher_token(api: ApiThread) -> None:
    code, out = lastmile(api, "watch", "--count", "1", role="dispatcher")
    assert code == 2 and "403" in out
