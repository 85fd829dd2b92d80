"""MQTT over TLS through a real mosquitto: the controller's link and a simulated robot, with certificates the
test makes (a CA, a server certificate for 127.0.0.1, a second CA that must not be trusted).

What is proved: an order goes out and the robot's states come back over `mqtts://`; the TLS listener
refuses a plaintext client (so nothing crosses in clear, not even a password); a controller that trusts
another CA, or dials a host the certificate does not name, is refused with a message an operator can act on;
the station file's `[broker]` TLS fields are checked at load, naming the field.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
import typer
from typer.testing import CliRunner

from controller.errors import InputError
from controller.station import BrokerConfig, load_station
from sitl.broker import Broker
from sitl.robot import RobotFleet, SimRobot
from sitl.robot.cli import parse_broker_url, robot
from sitl.tls import Pki, client_context, make_pki
from vehicles.vda5050 import BrokerUnavailable, FleetLink, OrderPlan, PlannedNode

HAVE_MOSQUITTO = shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()
pytestmark = pytest.mark.skipif(not HAVE_MOSQUITTO, reason="needs the mosquitto binary")

MANUFACTURER = "lastmile"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki", hosts=["127.0.0.1"], clients=["controller"])


@pytest.fixture
async def tls_broker(pki: Pki) -> AsyncIterator[Broker]:
    broker = Broker(
        robots=["r1"],
        manufacturer=MANUFACTURER,
        kind="mosquitto",
        ca_file=pki.ca_file,
        cert_file=pki.server.cert,
        key_file=pki.server.key,
    )
    async with broker:
        yield broker


def controller_link(broker: Broker, ca_file: Path, host: str | None = None) -> FleetLink:
    """The controller's link, built as `lastmile serve` builds it: from a `[broker]` station section."""
    user, password = broker.controller_credentials()
    config = BrokerConfig(
        url=f"mqtts://{host or broker.host}:{broker.port}", username=user, password=password, ca_file=ca_file
    )
    return FleetLink(**config.link_options(), keepalive=5, reconnect_max_s=0.3)


async def test_an_order_and_the_robots_states_cross_a_tls_listener(tls_broker: Broker, pki: Pki) -> None:
    assert tls_broker.url.startswith("mqtts://")
    assert "certfile" in (tls_broker.workdir / "mosquitto.conf").read_text()
    async with controller_link(tls_broker, pki.ca_file) as link:
        await link.wait_connected(5)
        robot = link.add_robot("r1", manufacturer=MANUFACTURER)
        sim = SimRobot("r1", manufacturer=MANUFACTURER)
        fleet = RobotFleet(
            [sim],
            tls_broker.host,
            tls_broker.port,
            credentials={"r1": tls_broker.credentials("r1")},
            speedup=50,
            tls_context=client_context(pki.ca_file),
        )
        async with fleet:
            await robot.wait_until(lambda r: r.available, timeout_s=5)
            plan = OrderPlan("o-tls", [PlannedNode("a", 0, 0), PlannedNode("b", 20, 0)], map_id="station")
            await robot.send_order(plan, released_until=1)
            await robot.wait_until(
                lambda r: r.view is not None and r.view.order_id == "o-tls" and r.view.last_node_id == "b",
                timeout_s=5,
            )
    assert sim.order_id == "o-tls"


async def test_a_plaintext_client_is_refused_by_the_tls_listener(tls_broker: Broker) -> None:
    user, password = tls_broker.controller_credentials()
    # The right password, but in clear: the listener wants a TLS handshake and drops the connection.
    plain = aiomqtt.Client(tls_broker.host, tls_broker.port, username=user, password=password, timeout=1.5)
    with pytest.raises(aiomqtt.MqttError):
        async with plain:
            pass
    # mosquitto logs "New client connected ... u'controller'" for every login it accepts: none here.
    assert "u'controller'" not in tls_broker.log_text()


async def test_a_broker_signed_by_another_ca_is_refused_with_a_readable_error(
    tls_broker: Broker, tmp_path: Path
) -> None:
    stranger = make_pki(tmp_path / "other", hosts=["127.0.0.1"])
    async with controller_link(tls_broker, stranger.ca_file) as link:
        with pytest.raises(BrokerUnavailable) as refused:
            await link.wait_connected(1.5)
    message = str(refused.value)
    assert "mqtts://127.0.0.1" in message
    assert "not signed by a CA this side trusts" in message and "ca_file" in message
    assert not link.connected.is_set() and link.stats.connects == 0


async def test_a_certificate_for_another_host_is_refused(tls_broker: Broker, pki: Pki) -> None:
    # The certificate names 127.0.0.1 only; dialing "localhost" reaches the same broker under another name.
    async with controller_link(tls_broker, pki.ca_file, host="localhost") as link:
        with pytest.raises(BrokerUnavailable, match="certificate is not for 'localhost'"):
            await link.wait_connected(1.5)


async def test_a_robot_that_trusts_another_ca_does_not_connect(tls_broker: Broker, tmp_path: Path) -> None:
    stranger = make_pki(tmp_path / "other", hosts=["127.0.0.1"])
    fleet = RobotFleet(
        [SimRobot("r1", manufacturer=MANUFACTURER)],
        tls_broker.host,
        tls_broker.port,
        credentials={"r1": tls_broker.credentials("r1")},
        tls_context=client_context(stranger.ca_file),
    )
    with pytest.raises(TimeoutError):
        await fleet.start(timeout_s=1.0)
    client = fleet.clients["r1"]
    await fleet.stop()
    assert client.connects == 0 and "CERTIFICATE_VERIFY_FAILED" in (client.last_error or "")


async def test_client_certificates_when_the_broker_asks_for_them(pki: Pki, tmp_path: Path) -> None:
    broker = Broker(
        manufacturer=MANUFACTURER,
        kind="mosquitto",
        ca_file=pki.ca_file,
        cert_file=pki.server.cert,
        key_file=pki.server.key,
        require_certificate=True,
    )
    async with broker:
        user, password = broker.controller_credentials()
        mine = pki.clients["controller"]
        with_cert = BrokerConfig(
            url=broker.url, username=user, password=password,
            ca_file=pki.ca_file, client_cert=mine.cert, client_key=mine.key,
        )  # fmt: skip
        async with FleetLink(**with_cert.link_options(), reconnect_max_s=0.3) as link:
            await link.wait_connected(5)
        without = with_cert.model_copy(update={"client_cert": None, "client_key": None})
        async with FleetLink(**without.link_options(), reconnect_max_s=0.3) as link:
            with pytest.raises(BrokerUnavailable):
                await link.wait_connected(1.5)


def write_station(tmp_path: Path, broker: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(f'name = "tls"\nlat = 33.44\nlon = -112.256\n\n[broker]\n{broker}\n')
    return path


def test_station_file_tls_fields_are_checked_at_load(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_bytes(pki.ca_file.read_bytes())
    station = load_station(
        write_station(tmp_path, 'url = "mqtts://broker.example"\nca_file = "certs/ca.crt"')
    )
    assert station.broker is not None and station.broker.tls and station.broker.port == 8883
    assert station.broker.ca_file == (tmp_path / "certs" / "ca.crt").resolve()  # relative to the file

    cases = {
        'url = "mqtts://b.example"\nca_file = "missing.crt"': ("broker.ca_file", "does not exist"),
        'url = "mqtt://b.example"\nca_file = "certs/ca.crt"': ("broker", "use mqtts://"),
        'url = "http://b.example"': ("broker.url", "mqtt:// or mqtts://"),
        'url = "mqtts://b.example"\nclient_cert = "certs/ca.crt"': ("broker", "client_key"),
    }
    for body, (field, words) in cases.items():
        with pytest.raises(InputError) as refused:
            load_station(write_station(tmp_path, body))
        assert refused.value.field == field and words in str(refused.value), body
    (tmp_path / "certs" / "bad.crt").write_text("not a certificate")
    with pytest.raises(InputError) as refused:
        load_station(write_station(tmp_path, 'url = "mqtts://b.example"\nca_file = "certs/bad.crt"'))
    assert refused.value.field == "broker.ca_file"


def test_robot_cli_takes_mqtts_urls() -> None:
    assert parse_broker_url("mqtts://broker.example") == ("broker.example", 8883, None, None)
    assert parse_broker_url("mqtts://r1:pw@127.0.0.1:8884") == ("127.0.0.1", 8884, "r1", "pw")


def test_broker_makes_its_own_ca_when_asked_for_tls() -> None:
    with Broker(kind="mosquitto", tls=True) as broker:
        assert broker.url.startswith("mqtts://") and broker.ca_file is not None and broker.ca_file.is_file()

        async def connect() -> None:
            user, password = broker.controller_credentials()
            async with aiomqtt.Client(
                broker.host, broker.port, username=user, password=password, timeout=3,
                tls_context=client_context(broker.ca_file),
            ):  # fmt: skip
                pass

        asyncio.run(connect())


async def test_lastmile_sitl_robot_connects_over_tls(pki: Pki) -> None:
    broker = Broker(
        robots=["robot-001"],
        manufacturer=MANUFACTURER,
        kind="mosquitto",
        ca_file=pki.ca_file,
        cert_file=pki.server.cert,
        key_file=pki.server.key,
    )
    async with broker:
        _, password = broker.credentials("robot-001")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sitl.robot.cli", "--broker", broker.url, "--ca-file", str(pki.ca_file),
            "--password", password, "--keepalive", "2",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(4):
                line = await proc.stdout.readline()  # printed once every robot is online
            assert line.decode().strip() == "ready 1 robots"
        finally:
            proc.terminate()
            await proc.wait()


def test_robot_cli_refuses_tls_options_without_mqtts(pki: Pki) -> None:
    app = typer.Typer()
    app.command()(robot)
    runner = CliRunner()
    plain = runner.invoke(app, ["--broker", "mqtt://127.0.0.1:1883", "--ca-file", str(pki.ca_file)])
    assert plain.exit_code == 2 and "--ca-file needs an mqtts://" in " ".join(
        plain.output.replace("│", " ").split()
    )
    missing = runner.invoke(app, ["--broker", "mqtts://127.0.0.1", "--ca-file", "/nonexistent/ca.crt"])
    assert missing.exit_code == 2 and "/nonexistent/ca.crt" in missing.output
