"""Signing keys from the station file to the drone (issue 18, item 1): key files and their modes, keys
from the environment, `require_signing`, `lastmile keys generate / provision` against the simulator over
real sockets, and a simulated station (what `lastmile demo` runs) that keys its drones by itself."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

os.environ.setdefault("MAVLINK20", "1")
from pymavlink.dialects.v20 import ardupilotmega as mavlink
from typer.testing import CliRunner

from controller.cli import app
from controller.errors import InputError
from controller.simstation import SimStation
from controller.station import StationConfig, load_station
from sitl.copter import SimCopterFleet
from vehicles.mavlink.signing import generate_key_file, key_id, read_key_file, signing_timestamp

M = mavlink
STATION = 'name = "s"\nlat = 33.44\nlon = -112.256\n'


def station_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(STATION + body, encoding="utf-8")
    return path


def drone(vid: str, extra: str = "", url: str = "tcp:127.0.0.1:5762") -> str:
    return f'[[fleet]]\nid = "{vid}"\nkind = "drone"\nurl = "{url}"\n{extra}'


# -- the station file ----------------------------------------------------------------------------------


def test_a_key_file_others_can_read_is_refused_naming_the_field_and_the_file(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "d1.key"
    key.parent.mkdir()
    generate_key_file(key)
    path = station_file(tmp_path, drone("d1", 'signing_key_file = "keys/d1.key"\n'))
    assert load_station(path).fleet[0].signing_key_file == key.resolve()  # relative to the station file
    key.chmod(0o644)
    with pytest.raises(InputError) as err:
        load_station(path)
    assert err.value.field == "fleet.d1.signing_key_file"
    assert str(key.resolve()) in str(err.value) and "0644" in str(err.value)


def test_bad_keys_and_missing_ones_are_refused_with_a_readable_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = tmp_path / "short.key"
    short.write_text("abcd\n")
    short.chmod(0o600)
    with pytest.raises(InputError) as err:
        load_station(station_file(tmp_path, drone("d1", f'signing_key_file = "{short}"\n')))
    assert err.value.field == "fleet.d1.signing_key_file" and "64 hex digits" in str(err.value)
    with pytest.raises(InputError) as err:
        load_station(station_file(tmp_path, drone("d1", 'signing_key_file = "nowhere.key"\n')))
    assert "lastmile keys generate" in str(err.value)
    monkeypatch.delenv("LASTMILE_KEY_D1", raising=False)
    with pytest.raises(InputError) as err:
        load_station(station_file(tmp_path, drone("d1", 'signing_key_env = "LASTMILE_KEY_D1"\n')))
    assert err.value.field == "fleet.d1.signing_key_env" and "LASTMILE_KEY_D1 is not set" in str(err.value)
    # a key from the environment: 64 hex digits; its signing clock goes next to the station file
    monkeypatch.setenv("LASTMILE_KEY_D1", bytes(range(32)).hex())
    config = load_station(station_file(tmp_path, drone("d1", 'signing_key_env = "LASTMILE_KEY_D1"\n')))
    found = config.signing_for(config.fleet[0])
    assert found == (bytes(range(32)), tmp_path / "d1.signing-state")
    with pytest.raises(InputError) as err:  # both at once: which one would be used?
        load_station(
            station_file(
                tmp_path,
                drone("d1", f'signing_key_env = "LASTMILE_KEY_D1"\nsigning_key_file = "{short}"\n'),
            )
        )
    assert "not both" in str(err.value)


def test_require_signing_refuses_a_networked_drone_without_a_key(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "d1.key")
    body = "require_signing = true\n" + drone("d1", 'signing_key_file = "d1.key"\n') + drone("d2")
    with pytest.raises(InputError) as err:
        load_station(station_file(tmp_path, body))
    assert err.value.field == "fleet.d2"
    assert "drone 'd2' at tcp:127.0.0.1:5762 has no signing key" in str(err.value)
    assert "require_signing" in str(err.value)
    # a drone without a link yet (no url) is not refused: there is nothing to sign on
    offline = "require_signing = true\n" + '[[fleet]]\nid = "d3"\nkind = "drone"\n'
    assert load_station(station_file(tmp_path, offline)).require_signing


def test_the_example_station_requires_signing() -> None:
    from controller.examples import EXAMPLE_STATION

    assert load_station(EXAMPLE_STATION).require_signing


# -- lastmile keys -------------------------------------------------------------------------------------


def test_keys_generate_writes_a_key_only_its_owner_can_read(tmp_path: Path) -> None:
    out = tmp_path / "d1.key"
    result = CliRunner().invoke(app, ["keys", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    key = read_key_file(out)
    assert f"key {key_id(key)} written" in result.output and key.hex() not in result.output
    again = CliRunner().invoke(app, ["keys", "generate", "--out", str(out)])
    assert again.exit_code == 2 and "exists already" in " ".join(again.output.split())
    assert read_key_file(out) == key  # not overwritten


async def _lastmile(*args: str) -> tuple[int, str]:
    """`lastmile ...` on a thread of its own (it runs its own event loop, as from a shell), so the simulator
    keeps running on this one; real sockets in between."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


async def test_keys_provision_gives_the_key_over_serial0_and_rotates_it_over_a_signed_link(
    tmp_path: Path,
) -> None:
    """`lastmile keys provision` keys the simulated drone over SERIAL0, as over USB; a
    stranger without the key cannot re-key it from a telemetry link; the owner rotates it there with
    --current-key."""
    old, new, stranger = tmp_path / "old.key", tmp_path / "new.key", tmp_path / "stranger.key"
    for path in (old, new, stranger):
        generate_key_file(path)
    async with SimCopterFleet(1, base_port=0, speedup=20, boot_s=0) as fleet:
        copter = fleet.vehicles[0]
        serial0, serial1 = fleet.urls()[0], fleet.telemetry_urls()[0]
        code, out = await _lastmile(
            "keys", "provision", "--vehicle", "d1", "--connect", serial0, "--key", str(old)
        )
        assert code == 0, out
        assert copter.signing.secret_key == read_key_file(old)
        assert f"now signs with key {key_id(read_key_file(old))}" in out
        code, out = await _lastmile(
            "keys",
            "provision",
            "--vehicle",
            "d1",
            "--connect",
            serial1,
            "--key",
            str(stranger),
            "--timeout",
            "2",
        )
        assert code == 2 and "ignores unsigned messages on this link" in out, out
        assert copter.signing.secret_key == read_key_file(old)
        code, out = await _lastmile(
            "keys", "provision", "--vehicle", "d1", "--connect", serial1,
            "--key", str(new), "--current-key", str(old),
        )  # fmt: skip
        assert code == 0, out
        assert copter.signing.secret_key == read_key_file(new)


# -- a simulated station keys its drones (lastmile demo) ----------------------------------------------


async def test_a_station_that_requires_signing_keys_its_simulated_drones_and_links_them_signed(
    tmp_path: Path,
) -> None:
    """What `lastmile demo` does: each simulated drone gets its own key (0600, in the given directory),
    given over SERIAL0; the controller links over SERIAL1, signed; a stranger's ARM there is ignored."""
    config = StationConfig.model_validate(
        {
            "name": "s", "lat": 33.44, "lon": -112.256, "require_signing": True,
            "store_url": f"sqlite:///{tmp_path / 's.sqlite3'}",
            "fleet": [{"id": "d1", "kind": "drone"}, {"id": "d2", "kind": "drone"}],
        }
    )  # fmt: skip
    keys = tmp_path / "keys"
    async with SimStation(config, store_url=config.store_url, speedup=20, key_dir=keys) as station:
        assert station.copters is not None and station.service is not None
        for i, vid in enumerate(("d1", "d2")):
            key_file = keys / f"{vid}.key"
            assert key_file.stat().st_mode & 0o777 == 0o600
            copter = station.copters.vehicles[i]
            assert copter.signing.secret_key == read_key_file(key_file)
            entry = next(v for v in station.config.fleet if v.id == vid)
            assert entry.url == station.copters.telemetry_urls()[i]  # the link where signing is enforced
            carrier = station.service.carriers[vid]
            assert carrier.drone.conn.signing_required  # type: ignore[attr-defined]
        assert read_key_file(keys / "d1.key") != read_key_file(keys / "d2.key")
        copter = station.copters.vehicles[0]
        _reader, writer = await asyncio.open_connection("127.0.0.1", station.copters.telemetry_ports[0])
        stranger = mavlink.MAVLink(None, srcSystem=250, srcComponent=190)
        before = sum(link.rx_rejected for link in copter.outlets)
        writer.write(
            stranger.command_long_encode(
                1, 1, M.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 21196, 0, 0, 0, 0, 0
            ).pack(stranger)
        )
        await writer.drain()
        async with asyncio.timeout(3):
            while sum(link.rx_rejected for link in copter.outlets) <= before:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        writer.close()
        assert not copter.armed
        assert copter.signing.timestamp >= signing_timestamp() - 60 * 100_000  # a current clock
