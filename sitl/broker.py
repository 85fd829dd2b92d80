"""A real MQTT broker for tests and demos: `mosquitto` with generated auth and ACL, or embedded `amqtt`.

Why a generated config: the tests must prove what a deployment relies on (anonymous clients refused, a
robot may only write its own `state`/`connection`/`factsheet`/`visualization` and read its own `order`/
`instantActions`, the controller reads and writes everything), and they must never touch the machine's
own broker on 1883. So each `Broker` gets a temp dir, a free 127.0.0.1 port, a password file and an ACL.

Where no `mosquitto` binary exists (a laptop running `lastmile demo`), `amqtt` runs in a background
thread with the same users (argon2 password file) and the same per-robot publish/subscribe ACLs.

    with Broker(robots=["r1", "r2"]) as broker:        # or: async with Broker(...) as broker:
        user, password = broker.credentials("r1")
        ...
        broker.restart()                                # same port, e.g. for reconnect tests

TLS (`tls=True`): the one listener speaks MQTT over TLS only (`mqtts://`), so a plaintext client is refused
at the handshake. Without `ca_file`/`cert_file`/`key_file` the broker makes its own CA and a certificate for
its host in its temp dir (`sitl.tls.make_pki`; `broker.ca_file` is what clients must trust): the demo runs
encrypted without anyone making certificates. `require_certificate=True` also asks clients for a
certificate signed by that CA (mosquitto's `require_certificate`), on top of their passwords.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["Broker", "BrokerError", "free_port"]

log = logging.getLogger("lastmile.sitl.broker")

ROBOT_WRITES = ("state", "connection", "factsheet", "visualization")
ROBOT_READS = ("order", "instantActions")
# interface/major-version prefixes of VDA 5050 2.x and 3.x topics
PREFIXES = ("uagv/v2", "vda5050/v3")


class BrokerError(RuntimeError):
    """The broker could not be started or did not accept connections in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _find_mosquitto() -> str | None:
    for candidate in (os.environ.get("MOSQUITTO"), "/usr/sbin/mosquitto", shutil.which("mosquitto")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class Broker:
    """Start/stop an MQTT broker on 127.0.0.1 with one user per robot plus a controller user.

    `robots`: serial numbers (also their MQTT usernames); `manufacturer` names the topic level of their
    ACL entries. Passwords are random per robot unless `robot_password` is given (demos).
    `kind`: "auto" (mosquitto if installed, else amqtt), "mosquitto" or "amqtt".
    """

    def __init__(
        self,
        *,
        robots: Iterable[str] = (),
        manufacturer: str = "lastmile",
        controller_user: str = "controller",
        controller_password: str | None = None,
        robot_password: str | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        kind: str = "auto",
        start_timeout: float = 10.0,
        tls: bool = False,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        require_certificate: bool = False,
    ) -> None:
        if kind not in ("auto", "mosquitto", "amqtt"):
            raise ValueError(f"kind={kind!r}: expected 'auto', 'mosquitto' or 'amqtt'")
        self.manufacturer = manufacturer
        self.host = host
        self.port = port or free_port(host)
        self.start_timeout = start_timeout
        self.controller_user = controller_user
        self._passwords: dict[str, str] = {controller_user: controller_password or secrets.token_urlsafe(16)}
        self._robots: list[str] = []
        for serial in robots:
            if not serial or any(c in serial for c in "/+#: \n"):
                raise ValueError(
                    f"robots: serial number {serial!r} is not usable as an MQTT username/topic level"
                )
            if serial in self._passwords:
                raise ValueError(
                    f"robots: serial number {serial!r} given twice (or equals the controller user)"
                )
            self._robots.append(serial)
            self._passwords[serial] = robot_password or secrets.token_urlsafe(12)
        self._mosquitto = _find_mosquitto()
        if kind == "mosquitto" and self._mosquitto is None:
            raise BrokerError("kind='mosquitto' but no mosquitto binary found (apt-get install mosquitto)")
        self.kind = "mosquitto" if (kind != "amqtt" and self._mosquitto) else "amqtt"
        given = {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(k for k, v in given.items() if not v)
            raise ValueError(f"{missing}: TLS files come as a set (ca_file, cert_file, key_file) or not all")
        if any(given.values()) or require_certificate:
            tls = True
        self.tls = tls
        self.require_certificate = require_certificate
        if require_certificate and self.kind == "amqtt":
            raise BrokerError("require_certificate needs mosquitto (amqtt does not insist on certificates)")
        self._tls_files: tuple[Path, Path, Path] | None = (
            (Path(ca_file), Path(cert_file), Path(key_file)) if ca_file and cert_file and key_file else None
        )
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._amqtt_thread: threading.Thread | None = None
        self._amqtt_loop: asyncio.AbstractEventLoop | None = None
        self._amqtt_stop: asyncio.Event | None = None

    # ---- public ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients must trust (TLS only; made at `start` unless given)."""
        return self._tls_files[0] if self._tls_files else None

    @property
    def pki_dir(self) -> Path:
        """Where a broker that makes its own CA writes it (client certificates can be issued there too)."""
        return self.workdir / "tls"

    @property
    def robots(self) -> list[str]:
        return list(self._robots)

    def credentials(self, serial_number: str) -> tuple[str, str]:
        """(username, password) of a robot."""
        if serial_number not in self._robots:
            raise KeyError(f"serial_number={serial_number!r}: not a robot of this broker")
        return serial_number, self._passwords[serial_number]

    def controller_credentials(self) -> tuple[str, str]:
        """(username, password) of the controller, which may read and write every robot topic."""
        return self.controller_user, self._passwords[self.controller_user]

    @property
    def workdir(self) -> Path:
        if self._tmp is None:
            raise BrokerError("broker not started")
        return Path(self._tmp.name)

    @property
    def running(self) -> bool:
        if self.kind == "mosquitto":
            return self._proc is not None and self._proc.poll() is None
        return self._amqtt_thread is not None and self._amqtt_thread.is_alive()

    def start(self) -> None:
        """Write the config and start the broker; returns once it accepts TCP connections."""
        if self.running:
            return
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lastmile-broker-")
            if self.tls and self._tls_files is None:
                from sitl.tls import make_pki

                pki = make_pki(self.pki_dir, hosts=dict.fromkeys([self.host, "localhost"]))
                self._tls_files = (pki.ca_file, pki.server.cert, pki.server.key)
            self._write_files()
        if self.kind == "mosquitto":
            self._start_mosquitto()
        else:
            self._start_amqtt()
        self._wait_accepting()

    def stop(self) -> None:
        """Stop the broker (clients see the connection drop) and delete its files."""
        self._halt()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def restart(self) -> None:
        """Stop and start again on the same port with the same users (no persistence: sessions are lost)."""
        self._halt()
        self.start()

    def log_text(self) -> str:
        """mosquitto's log so far (empty for amqtt)."""
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)

    # ---- files -------------------------------------------------------------------------------
    def _acl_lines(self) -> list[str]:
        lines = [f"user {self.controller_user}"]
        lines += [f"topic readwrite {prefix}/#" for prefix in PREFIXES]
        for serial in self._robots:
            lines += ["", f"user {serial}"]
            for prefix in PREFIXES:
                base = f"{prefix}/{self.manufacturer}/{serial}"
                lines += [f"topic write {base}/{t}" for t in ROBOT_WRITES]
                lines += [f"topic read {base}/{t}" for t in ROBOT_READS]
        return lines

    def _write_files(self) -> None:
        work = self.workdir
        (work / "acl").write_text("\n".join(self._acl_lines()) + "\n")
        if self.kind == "mosquitto":
            self._write_mosquitto_passwords(work / "passwd")
            (work / "mosquitto.conf").write_text(
                "\n".join(
                    [
                        "per_listener_settings false",
                        # started as root, mosquitto would switch to user `mosquitto`, who cannot read our
                        # temp dir; naming the current user keeps it as is (ignored when not root)
                        f"user {pwd.getpwuid(os.getuid()).pw_name}",
                        f"listener {self.port} {self.host}",
                        *self._mosquitto_tls_lines(),
                        "allow_anonymous false",
                        f"password_file {work / 'passwd'}",
                        f"acl_file {work / 'acl'}",
                        "persistence false",
                        f"log_dest file {work / 'mosquitto.log'}",
                        "log_type error",
                        "log_type warning",
                        "log_type notice",
                        "log_type information",
                        "log_timestamp_format %H:%M:%S",
                        "max_queued_messages 10000",
                        # send each packet at once instead of waiting to fill a segment (Nagle): robots'
                        # states are small and latency matters more than a few bytes of TCP overhead
                        "set_tcp_nodelay true",
                        "",
                    ]
                )
            )

    def _mosquitto_tls_lines(self) -> list[str]:
        """The listener's TLS settings (nothing without TLS): the listener then speaks TLS only."""
        if self._tls_files is None:
            return []
        ca, cert, key = self._tls_files
        lines = [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}", "tls_version tlsv1.2"]
        if self.require_certificate:
            lines.append("require_certificate true")
        return lines

    def _write_mosquitto_passwords(self, path: Path) -> None:
        """Plain `user:password` lines hashed in place by `mosquitto_passwd -U` (one process, all users)."""
        path.write_text("".join(f"{user}:{pw}\n" for user, pw in self._passwords.items()))
        path.chmod(0o600)
        # MOSQUITTO_PASSWD names the tool; set it empty to write the hashes ourselves
        tool = os.environ.get(
            "MOSQUITTO_PASSWD", shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        )
        if tool and Path(tool).is_file():
            done = subprocess.run([tool, "-U", str(path)], capture_output=True, timeout=60, check=False)
            if done.returncode == 0:
                return
            log.warning(
                "mosquitto_passwd -U failed (%s); writing PBKDF2 hashes ourselves", done.stderr[-200:]
            )
        path.write_text("".join(f"{user}:{_pbkdf2_hash(pw)}\n" for user, pw in self._passwords.items()))

    # ---- mosquitto ---------------------------------------------------------------------------
    def _start_mosquitto(self) -> None:
        assert self._mosquitto is not None
        self._proc = subprocess.Popen(
            [self._mosquitto, "-c", str(self.workdir / "mosquitto.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in a demo terminal should not kill it before we stop it
        )

    def _halt(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            if proc.stderr is not None:
                proc.stderr.close()
        if self._amqtt_thread is not None:
            loop, stop = self._amqtt_loop, self._amqtt_stop
            if loop is not None and stop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(stop.set)
            self._amqtt_thread.join(timeout=10)
            self._amqtt_thread = None

    def _wait_accepting(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last: OSError | None = None
        while time.monotonic() < deadline:
            if self.kind == "mosquitto" and self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise BrokerError(
                    f"mosquitto exited with {self._proc.returncode}: {err.strip()} {self.log_text()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError as exc:
                last = exc
                time.sleep(0.02)  # polling a port that is not open yet: there is no event to wait on
        self._halt()
        raise BrokerError(
            f"{self.kind} did not accept connections on {self.url} within {self.start_timeout} s: {last}"
        )

    # ---- amqtt fallback ----------------------------------------------------------------------
    def _amqtt_config(self) -> dict[str, Any]:
        from pwdlib.hashers.argon2 import Argon2Hasher

        hasher = Argon2Hasher()
        passwd = self.workdir / "amqtt-passwd"
        passwd.write_text("".join(f"{u}:{hasher.hash(p)}\n" for u, p in self._passwords.items()))
        everything = [f"{prefix}/#" for prefix in PREFIXES]
        publish_acl: dict[str, list[str]] = {self.controller_user: everything}
        subscribe_acl: dict[str, list[str]] = {self.controller_user: everything}
        for serial in self._robots:
            bases = [f"{prefix}/{self.manufacturer}/{serial}" for prefix in PREFIXES]
            publish_acl[serial] = [f"{b}/{t}" for b in bases for t in ROBOT_WRITES]
            subscribe_acl[serial] = [f"{b}/{t}" for b in bases for t in ROBOT_READS]
        listener: dict[str, Any] = {"type": "tcp", "bind": f"{self.host}:{self.port}"}
        if self._tls_files is not None:
            ca, cert, key = self._tls_files
            listener.update(ssl=True, cafile=str(ca), certfile=str(cert), keyfile=str(key))
        return {
            "listeners": {"default": listener},
            "plugins": {
                "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(passwd)},
                "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
                    "publish_acl": publish_acl,
                    "acl": subscribe_acl,
                },
            },
        }

    def _start_amqtt(self) -> None:
        config = self._amqtt_config()
        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            from amqtt.broker import Broker as AmqttBroker

            self._amqtt_loop = asyncio.get_running_loop()
            self._amqtt_stop = asyncio.Event()
            try:
                broker = AmqttBroker(config)
                await broker.start()
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            await self._amqtt_stop.wait()
            await broker.shutdown()

        self._amqtt_thread = threading.Thread(
            target=asyncio.run, args=(serve(),), name="amqtt-broker", daemon=True
        )
        self._amqtt_thread.start()
        if not started.wait(self.start_timeout):
            raise BrokerError(f"amqtt did not start within {self.start_timeout} s")
        if failure:
            raise BrokerError(f"amqtt failed to start: {failure[0]}")


def _pbkdf2_hash(password: str) -> str:
    """mosquitto 2's password file format: `$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>`."""
    import base64
    import hashlib

    salt = secrets.token_bytes(12)
    iterations = 101
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
