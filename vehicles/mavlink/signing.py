"""MAVLink 2 message signing: provision a key on the drone with SETUP_SIGNING and sign what we send.

Once a vehicle has a key it refuses unsigned commands from anyone (ArduPilot: GCS_Signing.cpp
`accept_unsigned_callback` lets only RADIO_STATUS through), so a provisioned drone only obeys holders of
the key. Timestamps count 10 µs ticks since 2015-01-01 (https://mavlink.io/en/guide/message_signing.html);
a new stream is accepted only if its timestamp is within a minute of the receiver's, hence the wall clock.
SETUP_SIGNING has no ACK: provisioning is confirmed when a signed request gets a *signed* answer (a vehicle
that holds the key signs what it sends: GCS_Signing.cpp sets MAVLINK_SIGNING_FLAG_SIGN_OUTGOING; an
unprovisioned ArduPilot would answer a signed request too, but unsigned).
"""

from __future__ import annotations

import hashlib
import time

from vehicles.errors import LinkError
from vehicles.mavlink.connection import DroneConnection
from vehicles.mavlink.errors import ProtocolError

__all__ = ["key_from_passphrase", "provision_signing", "signing_timestamp", "use_signing"]

_EPOCH_2015 = 1420070400


def key_from_passphrase(passphrase: str) -> bytes:
    """32-byte key as MAVProxy's `signing setup <passphrase>` makes it (sha256 of the text)."""
    return hashlib.sha256(passphrase.encode()).digest()


def signing_timestamp() -> int:
    """Now, in the signing clock (10 µs units since 2015-01-01 UTC)."""
    return int((time.time() - _EPOCH_2015) * 100_000)


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        raise ValueError(
            f"signing key: expected 32 bytes, got {len(key) if hasattr(key, '__len__') else key!r}"
        )
    return bytes(key)


def use_signing(conn: DroneConnection, key: bytes, *, link_id: int = 0, accept_unsigned: bool = True) -> None:
    """Sign everything this connection sends from now on with `key` (and check signed replies).

    `accept_unsigned` lets unsigned vehicle messages in (a vehicle that was never provisioned still reports).
    """
    signing = conn.mav.signing
    signing.secret_key = _check_key(key)
    signing.link_id = link_id
    signing.timestamp = max(signing.timestamp, signing_timestamp())
    signing.sign_outgoing = True
    signing.allow_unsigned_callback = (lambda _mav, _msg_id: True) if accept_unsigned else None


async def provision_signing(
    conn: DroneConnection,
    key: bytes,
    *,
    attempts: int = 3,
    timeout_s: float = 1.0,
    sysid_param: str = "MAV_SYSID",
) -> None:
    """Store `key` on the drone (SETUP_SIGNING), then sign from here on; confirmed by a signed answer.

    The probe reads the drone's own system-id parameter, a name every ArduPilot has: `MAV_SYSID` since
    4.7, `SYSID_THISMAV` before (`Drone.param_name` picks it). Asking for a name the firmware lacks gets no
    answer at all (GCS_Param.cpp), which would read as "key refused".
    """
    key = _check_key(key)
    name = sysid_param.encode()
    for _ in range(attempts):
        # SETUP_SIGNING itself goes out the way the link currently speaks (unsigned the first time).
        conn.send(
            conn.mav.setup_signing_encode(conn.target_system, conn.target_component, key, signing_timestamp())
        )
        use_signing(conn, key)
        probe = conn.mav.param_request_read_encode(conn.target_system, conn.target_component, name, -1)
        try:
            await conn.request(
                probe,
                "PARAM_VALUE",
                lambda m: m.param_id == sysid_param and m.get_signed(),
                timeout_s=timeout_s,
                retries=1,
            )
            return
        except LinkError:
            conn.mav.signing.sign_outgoing = False  # try again from scratch
    raise ProtocolError("signing was not accepted (no answer to signed requests)", vehicle=conn.vehicle_id)
