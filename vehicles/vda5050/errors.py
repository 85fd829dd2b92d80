"""Errors of the VDA 5050 robot driver; they sit in the project tree under `vehicles.errors`.

LastmileError
└── VehicleError
    ├── LinkError
    │   └── BrokerUnavailable   the MQTT broker cannot be reached (after retries)
    └── ProtocolError
        ├── MalformedMessage    a received message that is not usable VDA 5050 (kind says why)
        ├── OrderRejected       the robot refused an order (its errors say why)
        └── CancelRefused       the robot refused (or never confirmed) a cancelOrder: its order runs on
"""

from __future__ import annotations

from vehicles.errors import LinkError, ProtocolError

__all__ = ["BrokerUnavailable", "CancelRefused", "MalformedMessage", "OrderRejected"]


class BrokerUnavailable(LinkError):
    """The MQTT broker refused or did not answer the connection."""


class MalformedMessage(ProtocolError):
    """A received message the driver cannot use.

    `kind` is one of `oversized`, `bad_json`, `bad_topic`, `version_mismatch`, `schema_invalid`,
    `header_mismatch`, `unknown_robot`: the driver counts messages by kind so operators can see a
    misbehaving robot.
    """

    def __init__(self, kind: str, reason: str, *, vehicle: str | None = None) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(f"{kind}: {reason}", vehicle=vehicle)


class OrderRejected(ProtocolError):
    """The robot reported an order error for an order we sent."""

    def __init__(self, reason: str, *, vehicle: str | None = None, error_type: str | None = None) -> None:
        self.error_type = error_type
        self.reason = reason
        super().__init__(reason, vehicle=vehicle)


class CancelRefused(ProtocolError):
    """A cancelOrder the robot refused, failed, or did not confirm in time: the order is still running.

    Why an error and not a flag: an operator's abort must not answer "ok" while the robot drives on.
    """

    def __init__(self, reason: str, *, vehicle: str | None = None, action_id: str | None = None) -> None:
        self.reason = reason
        self.action_id = action_id
        super().__init__(reason, vehicle=vehicle)
