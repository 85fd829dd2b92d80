"""sitl.broker: a real mosquitto with generated users and ACL (and the amqtt fallback), proved over TCP."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from sitl.broker import Broker

ROBOTS = ("robot-a", "robot-b")


@pytest.fixture
async def mosquitto():
    async with Broker(robots=ROBOTS, manufacturer="acme", kind="mosquitto") as b:
        yield b


def client(b: Broker, user: str | None, password: str | None = None, **kw) -> aiomqtt.Client:
    if user is not None and password is None:
        password = b.controller_credentials()[1] if user == b.controller_user else b.credentials(user)[1]
    return aiomqtt.Client(b.host, b.port, username=user, password=password, timeout=5, **kw)


async def refused(c: aiomqtt.Client) -> bool:
    try:
        async with c:
            return False
    except aiomqtt.MqttError as exc:
        return "not authori" in str(exc).lower() or "bad user name or password" in str(exc).lower()


async def next_message(c: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(5):
        return await anext(aiter(c.messages))


async def test_wrong_password_and_anonymous_are_refused(mosquitto):
    assert await refused(client(mosquitto, "robot-a", "not-the-password"))
    assert await refused(client(mosquitto, None))
    assert await refused(client(mosquitto, "intruder", "whatever"))
    async with client(mosquitto, "robot-a"):  # the right password works
        pass


async def test_robot_cannot_publish_another_robots_state(mosquitto):
    async with client(mosquitto, mosquitto.controller_user) as controller, client(mosquitto, "robot-a") as a:
        await controller.subscribe("uagv/v2/acme/+/state", qos=1)
        await a.publish("uagv/v2/acme/robot-b/state", b"forged", qos=1)  # refused by the ACL
        await a.publish("uagv/v2/acme/robot-a/state", b"own", qos=1)  # allowed: the positive control
        # messages from one client arrive in order, so if the forged one had passed it would come first
        message = await next_message(controller)
        assert (message.topic.value, message.payload) == ("uagv/v2/acme/robot-a/state", b"own")


async def test_robot_cannot_read_another_robots_orders(mosquitto):
    async with (
        client(mosquitto, mosquitto.controller_user) as controller,
        client(mosquitto, "robot-a") as a,
        client(mosquitto, "robot-b") as b,
    ):
        await a.subscribe("vda5050/v3/acme/+/order", qos=1)  # tries to listen to every robot's orders
        await b.subscribe("vda5050/v3/acme/robot-b/order", qos=1)
        await controller.publish("vda5050/v3/acme/robot-b/order", b"for b", qos=1)
        await controller.publish("vda5050/v3/acme/robot-a/order", b"for a", qos=1)
        got_a = await next_message(a)
        got_b = await next_message(b)
    assert got_a.payload == b"for a"  # b's order, sent first, never reached a
    assert got_b.payload == b"for b"  # ... although it was delivered to b


async def test_restart_keeps_port_and_users(mosquitto):
    port = mosquitto.port
    await asyncio.to_thread(mosquitto.restart)
    assert mosquitto.port == port and mosquitto.running
    async with client(mosquitto, "robot-b"):
        pass
    assert await refused(client(mosquitto, "robot-b", "wrong"))


def test_sync_start_stop_and_bad_serials():
    b = Broker(robots=["x1"], kind="mosquitto")
    b.start()
    try:
        assert b.running and b.url == f"mqtt://127.0.0.1:{b.port}"
    finally:
        b.stop()
    assert not b.running
    with pytest.raises(ValueError, match="robots: serial number 'a/b'"):
        Broker(robots=["a/b"])
    with pytest.raises(ValueError, match="given twice"):
        Broker(robots=["x", "x"])
    with pytest.raises(KeyError, match="nope"):
        b.credentials("nope")


@pytest.mark.filterwarnings("ignore:The .acl. option is deprecated:DeprecationWarning")
async def test_amqtt_fallback_has_the_same_auth_and_acl():
    async with Broker(robots=ROBOTS, manufacturer="acme", kind="amqtt") as b:
        assert b.kind == "amqtt"
        assert await refused(client(b, "robot-a", "not-the-password"))
        async with client(b, b.controller_user) as controller, client(b, "robot-a") as a:
            await controller.subscribe("uagv/v2/acme/+/state", qos=1)
            await a.publish("uagv/v2/acme/robot-b/state", b"forged", qos=1)
            await a.publish("uagv/v2/acme/robot-a/state", b"own", qos=1)
            message = await next_message(controller)
            assert message.payload == b"own"
        async with client(b, b.controller_user) as controller, client(b, "robot-a") as a:
            await a.subscribe("uagv/v2/acme/robot-b/order", qos=1)  # refused for robot-a
            await a.subscribe("uagv/v2/acme/robot-a/order", qos=1)
            await controller.publish("uagv/v2/acme/robot-b/order", b"for b", qos=1)
            await controller.publish("uagv/v2/acme/robot-a/order", b"for a", qos=1)
            assert (await next_message(a)).payload == b"for a"


async def test_password_file_written_without_mosquitto_passwd(monkeypatch):
    """Where mosquitto_passwd is missing we write mosquitto's PBKDF2-SHA512 format ourselves."""
    monkeypatch.setenv("MOSQUITTO_PASSWD", "")
    async with Broker(robots=["robot-a"], kind="mosquitto") as b:
        assert all(
            line.split(":", 1)[1].startswith("$7$101$") for line in (b.workdir / "passwd").read_text().split()
        )
        async with client(b, "robot-a"):
            pass
        assert await refused(client(b, "robot-a", "wrong"))
