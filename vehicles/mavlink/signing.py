"""MAVLink 2 message signing: keys, the verifying codec, persistent timestamps, and SETUP_SIGNING.

Why: without signing a drone obeys anyone who can reach one of its links, and the controller believes
anyone who can send it a datagram (a spoofed MISSION_ITEM_REACHED reads as a delivery). With a key, both
ends sign what they send and drop what is unsigned or signed with another key.

What the spec and ArduPilot fix (https://mavlink.io/en/guide/message_signing.html; ArduPilot
libraries/GCS_MAVLink/GCS_Signing.cpp and the generated mavlink_helpers.h it builds with):
- the signature is the first 48 bits of sha256(key + header + payload + crc + link id + timestamp);
- timestamps count 10 µs ticks since 2015-01-01 00:00 UTC and must grow per stream, a stream being
  (link id, system id, component id); a new stream is accepted only if its timestamp is at most a minute
  behind the receiver's own (`mavlink_signature_check`);
- the signature is checked *before* the timestamp is looked at or remembered (`mavlink_signature_check`
  compares the hash first). pymavlink 2.4's `MAVLink.check_signature` records the stream's timestamp
  first, so one forged packet with a huge timestamp would make every real packet of that stream look
  replayed: `VerifyingMAVLink` restores the C order;
- once a vehicle has a key it refuses unsigned commands on every link but channel 0 (USB, SITL's SERIAL0)
  and lets only RADIO_STATUS / RADIO through unsigned (GCS_Signing.cpp `accept_unsigned_callback`,
  `accept_list`); SETUP_SIGNING is honoured on any link whose checks it passes: unsigned where unsigned is
  accepted (channel 0, or a vehicle without a key), signed with the current key elsewhere (rotation);
- the vehicle keeps its timestamp in storage (saved every 30 s) and starts a minute past it after a
  reboot (`load_signing_key`, `save_signing_timestamp`), so nothing it sent before can be replayed.

The controller does the same for its side: `SigningState` stores its own outgoing timestamp and the
last timestamp of every stream it accepted, next to the key, so after a restart it neither reuses a
timestamp (the drone would drop its commands as replays) nor accepts a packet captured before the restart.

SETUP_SIGNING has no ACK: provisioning is confirmed when a signed request gets a *signed* answer (a
vehicle that holds the key signs what it sends, MAVLINK_SIGNING_FLAG_SIGN_OUTGOING in `load_signing_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import stat
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.errors import LinkError
from vehicles.mavlink.errors import ProtocolError

if TYPE_CHECKING:
    from vehicles.mavlink.connection import DroneConnection

__all__ = [
    "KeyFileError",
    "Rejection",
    "SigningState",
    "VerifyingMAVLink",
    "generate_key_file",
    "key_from_passphrase",
    "parse_key",
    "provision_signing",
    "read_key_file",
    "signing_timestamp",
    "use_signing",
]

log = logging.getLogger("lastmile.vehicles.mavlink.signing")

_EPOCH_2015 = 1420070400
TICKS_PER_S = 100_000  # 10 µs units
NEW_STREAM_WINDOW = 60 * TICKS_PER_S  # mavlink_signature_check: "not more than 1 minute old"
# Messages a radio modem injects itself and cannot sign (GCS_Signing.cpp accept_list).
UNSIGNED_ALLOWED = frozenset({mavlink.MAVLINK_MSG_ID_RADIO_STATUS, mavlink.MAVLINK_MSG_ID_RADIO})
_SIG_TAIL = struct.Struct("<IH")  # the 48-bit timestamp as pymavlink unpacks it


def key_from_passphrase(passphrase: str) -> bytes:
    """32-byte key as MAVProxy's `signing setup <passphrase>` makes it (sha256 of the text)."""
    return hashlib.sha256(passphrase.encode()).digest()


def signing_timestamp(unix_s: float | None = None) -> int:
    """Now (or `unix_s`), in the signing clock (10 µs units since 2015-01-01 UTC)."""
    return int(((time.time() if unix_s is None else unix_s) - _EPOCH_2015) * TICKS_PER_S)


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        raise ValueError(
            f"signing key: expected 32 bytes, got {len(key) if hasattr(key, '__len__') else key!r}"
        )
    return bytes(key)


def key_id(key: bytes) -> str:
    """A short public name for a key (not the key): the first 8 hex digits of sha256(sha256(key))."""
    return hashlib.sha256(hashlib.sha256(key).digest()).hexdigest()[:8]


# -- key files ---------------------------------------------------------------------------------------------


class KeyFileError(ValueError):
    """A key file or key text that cannot be used; the message says which file and why."""


def parse_key(text: bytes | str, *, source: str) -> bytes:
    """A key from its stored form: 64 hex digits (what `generate_key_file` writes) or 32 raw bytes."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    stripped = raw.strip()
    if len(stripped) == 64:
        try:
            return bytes.fromhex(stripped.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(raw) == 32:
        return raw
    raise KeyFileError(f"{source}: expected 64 hex digits (or 32 raw bytes), found {len(raw)} bytes")


def read_key_file(path: str | Path) -> bytes:
    """The 32-byte key in `path`, refused unless only its owner can read it (mode 0600 or 0400).

    A key others can read is a key others may hold: refusing it at load is cheaper than finding out
    after a stranger armed a drone. POSIX only; where modes mean nothing (Windows) the check is skipped.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(
            f"{path} does not exist (make one with `lastmile keys generate --out {path}`)"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path} is not a regular file")
    if os.name == "posix" and st.st_mode & 0o077:
        raise KeyFileError(
            f"{path} has mode {stat.S_IMODE(st.st_mode):04o}; a signing key must be readable by its owner "
            f"only (chmod 600 {path})"
        )
    try:
        return parse_key(path.read_bytes(), source=str(path))
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from None


def generate_key_file(path: str | Path, *, overwrite: bool = False) -> bytes:
    """Write a new random key to `path` (mode 0600, created so; never world-readable, even briefly)."""
    path = Path(path)
    key = secrets.token_bytes(32)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists already (keys are not overwritten without --force)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as fh:
        if os.name == "posix":
            os.fchmod(fh.fileno(), 0o600)  # an existing file keeps its old mode under O_TRUNC
        fh.write(key.hex() + "\n")
    return key


# -- persistent timestamps ---------------------------------------------------------------------------------


@dataclass
class SigningState:
    """Where one key's signing clock is kept between runs (a small JSON file, mode 0600).

    Saved periodically and on close. A file not marked clean (the process died) was saved up to
    `save_period_s` before the last timestamp was used, so the next start adds that much: ArduPilot does
    the same with a minute for its 30 s saves (GCS_Signing.cpp `load_signing_key`).
    """

    path: Path
    save_period_s: float = 5.0
    saved_timestamp: int = 0
    _last_saved: tuple[int, int] | None = field(default=None, repr=False)

    def load(self, key: bytes) -> tuple[int, dict[tuple[int, int, int], int]]:
        """(first timestamp to send with, accepted streams' last timestamps) for `key`."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return signing_timestamp(), {}
        except (OSError, ValueError) as exc:
            log.warning("signing state %s unreadable (%s): starting from the clock", self.path, exc)
            return signing_timestamp(), {}
        stored = int(data.get("timestamp", 0))
        margin = 0 if data.get("clean") else int((self.save_period_s + 1) * TICKS_PER_S)
        self.saved_timestamp = stored
        streams: dict[tuple[int, int, int], int] = {}
        if data.get("key_id") == key_id(key):  # another key's streams mean nothing for this one
            for name, ts in data.get("streams", {}).items():
                with contextlib.suppress(ValueError):
                    link_id, sysid, compid = (int(p) for p in name.split(":"))
                    streams[(link_id, sysid, compid)] = int(ts)
        return max(signing_timestamp(), stored + 1 + margin), streams

    def save(self, key: bytes, signing: Any, *, clean: bool = False) -> None:
        """Write the clock and the streams (atomically: a crash leaves the old file or the new one)."""
        marker = (signing.timestamp, len(signing.stream_timestamps))
        if not clean and marker == self._last_saved:
            return
        data = {
            "key_id": key_id(key),
            "timestamp": signing.timestamp,
            "clean": clean,
            "streams": {f"{lk}:{s}:{c}": ts for (lk, s, c), ts in signing.stream_timestamps.items()},
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.path)
        self.saved_timestamp = signing.timestamp
        self._last_saved = marker


def state_path_for(key_file: str | Path) -> Path:
    """Where a key file's signing state lives: next to it, `<key file>.state`."""
    key_file = Path(key_file)
    return key_file.with_name(key_file.name + ".state")


# -- the verifying codec -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """One message refused by signing: why, what it claimed to be, and who it claimed to be from."""

    reason: str  # "unsigned", "bad signature", "replayed", "stale"
    msg_type: str
    src_system: int
    src_component: int
    link_id: int | None = None
    timestamp: int | None = None  # the signing timestamp it carried (signed packets)
    t: float = field(default_factory=time.monotonic)


class VerifyingMAVLink(mavlink.MAVLink):
    """pymavlink's codec with MAVLink's own verification order, and a callback for every rejection.

    `check_signature` compares the hash first and only then checks and remembers the stream's timestamp,
    as the C library does; `on_reject(Rejection)` hears about every packet dropped for signing reasons
    (the parser then yields a BAD_DATA for it, which nothing acts on).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_reject: Callable[[Rejection], None] | None = None
        self._verdict: tuple[str, int | None, int | None] | None = None

    def check_signature(self, msgbuf: bytearray, srcSystem: int, srcComponent: int) -> bool:
        signing = self.signing
        assert signing.secret_key is not None
        link_id = msgbuf[-13]
        tlow, thigh = _SIG_TAIL.unpack(msgbuf[-12:-6])
        timestamp = tlow + (thigh << 32)
        digest = hashlib.sha256(signing.secret_key + bytes(msgbuf[:-6])).digest()[:6]
        if digest != bytes(msgbuf[-6:]):
            self._verdict = ("bad signature", link_id, timestamp)
            return False
        stream = (link_id, srcSystem, srcComponent)
        last = signing.stream_timestamps.get(stream)
        if last is not None:
            if timestamp <= last:
                self._verdict = ("replayed", link_id, timestamp)
                return False
        elif timestamp + NEW_STREAM_WINDOW < signing.timestamp:
            self._verdict = ("stale", link_id, timestamp)
            return False
        signing.stream_timestamps[stream] = timestamp
        signing.timestamp = max(signing.timestamp, timestamp)
        return True

    def decode(self, msgbuf: bytearray) -> mavlink.MAVLink_message:
        self._verdict = None
        try:
            return super().decode(msgbuf)
        except mavlink.MAVError as exc:
            if exc.message == "Invalid signature" and self.on_reject is not None:
                reason, link_id, timestamp = self._verdict or ("unsigned", None, None)
                sysid, compid, msgid = _header(msgbuf)
                kind = mavlink.mavlink_map.get(msgid)
                name = kind.msgname if kind is not None else f"MSG_{msgid}"
                self.on_reject(Rejection(reason, name, sysid, compid, link_id, timestamp))
            raise


def _header(msgbuf: bytearray) -> tuple[int, int, int]:
    """(system id, component id, message id) from a raw packet (MAVLink 2 or 1)."""
    if msgbuf[0] == mavlink.PROTOCOL_MARKER_V2:
        return msgbuf[5], msgbuf[6], msgbuf[7] | msgbuf[8] << 8 | msgbuf[9] << 16
    return msgbuf[3], msgbuf[4], msgbuf[5]


def _radio_only(_mav: Any, msg_id: int) -> bool:
    return msg_id in UNSIGNED_ALLOWED


def accept_all(_mav: Any, _msg_id: int) -> bool:
    """The unsigned-message callback of a connection that verifies signatures but lets unsigned ones in."""
    return True


def use_signing(
    conn: DroneConnection,
    key: bytes,
    *,
    link_id: int = 0,
    accept_unsigned: bool = False,
    state: SigningState | None = None,
) -> None:
    """Sign everything this connection sends from now on with `key`, and accept only what is signed with it.

    Unsigned and wrongly signed messages are dropped and counted (`conn.rejected`), except what a radio
    modem injects (RADIO_STATUS, RADIO: it cannot sign), as ArduPilot does. `accept_unsigned=True` lets
    unsigned messages in as well: only for talking to a vehicle that does not hold the key yet.
    With `state`, the clock starts past the stored one and accepted streams are remembered across runs.
    """
    signing = conn.mav.signing
    signing.secret_key = _check_key(key)
    signing.link_id = link_id
    start = signing_timestamp()
    if state is not None:
        start, streams = state.load(signing.secret_key)
        signing.stream_timestamps.update(streams)
    signing.timestamp = max(signing.timestamp, start)
    signing.sign_outgoing = True
    signing.allow_unsigned_callback = accept_all if accept_unsigned else _radio_only
    conn.signing_state = state


async def provision_signing(
    conn: DroneConnection,
    key: bytes,
    *,
    attempts: int = 3,
    timeout_s: float = 1.0,
    sysid_param: str = "MAV_SYSID",
    link_id: int = 0,
    state: SigningState | None = None,
) -> None:
    """Store `key` on the drone (SETUP_SIGNING), then sign from here on; confirmed by a signed answer.

    SETUP_SIGNING goes out the way the link speaks now: unsigned the first time (the drone takes it on
    channel 0, or on any link while it holds no key), signed with the current key when rotating.
    ArduPilot ignores it while armed ("Won't setup signing when armed"), so an armed drone is refused here.
    The probe reads the drone's own system-id parameter, a name every ArduPilot has: `MAV_SYSID` since
    4.7, `SYSID_THISMAV` before (`Drone.param_name` picks it). Asking for a name the firmware lacks gets no
    answer at all (GCS_Param.cpp), which would read as "key refused".
    """
    key = _check_key(key)
    name = sysid_param.encode()
    signing = conn.mav.signing
    before = (signing.secret_key, signing.sign_outgoing, signing.allow_unsigned_callback)
    for _ in range(attempts):
        conn.send(
            conn.mav.setup_signing_encode(conn.target_system, conn.target_component, key, signing_timestamp())
        )
        # Unsigned messages already on their way (sent before the drone took the key) are let in while we
        # wait for the signed answer, not counted as attacks; once it came, nothing unsigned is.
        use_signing(conn, key, link_id=link_id, state=state, accept_unsigned=True)
        probe = conn.mav.param_request_read_encode(conn.target_system, conn.target_component, name, -1)
        try:
            await conn.request(
                probe,
                "PARAM_VALUE",
                lambda m: m.param_id == sysid_param and m.get_signed(),
                timeout_s=timeout_s,
                retries=1,
            )
            signing.allow_unsigned_callback = _radio_only
            return
        except LinkError:
            # try again from scratch: as the link spoke before (unsigned, or signed with the old key)
            signing.secret_key, signing.sign_outgoing, signing.allow_unsigned_callback = before
    raise ProtocolError("signing was not accepted (no answer to signed requests)", vehicle=conn.vehicle_id)
