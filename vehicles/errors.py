"""Errors raised by vehicle drivers; see `geofences.errors` for the whole tree."""

from __future__ import annotations

from geofences.errors import LastmileError


class VehicleError(LastmileError):
    """Something went wrong talking to, or with, a vehicle."""

    def __init__(self, message: str, *, vehicle: str | None = None) -> None:
        self.vehicle = vehicle
        super().__init__(f"{vehicle}: {message}" if vehicle else message)


class LinkError(VehicleError):
    """The link to a vehicle is down, or an exchange timed out."""


class ProtocolError(VehicleError):
    """A peer answered in a way the protocol does not allow (or refused a command)."""
