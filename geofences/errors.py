"""The project's error tree, rooted here because `geofences` is the package everything else imports.

    LastmileError
    ├── ZoneError            geofences: a zone file or feature that cannot be used (names feature and field)
    ├── vehicles.errors.VehicleError
    │   ├── LinkError        a vehicle link is down or timed out
    │   └── ProtocolError    a peer answered outside the protocol
    └── controller.errors.ControllerError
        ├── InputError       bad input (names row/field and reason); nothing was changed
        └── InfeasibleError  a plan that safety rules refuse

Exceptions carry data (the feature, field and reason) so callers can report them without parsing text.
"""

from __future__ import annotations


class LastmileError(Exception):
    """Root of every error raised on purpose by lastmile-fleet."""


class ZoneError(LastmileError):
    """A zone file or feature that cannot be used: names the feature, the field and the reason."""

    def __init__(self, reason: str, *, feature: str | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.feature = feature
        self.field = field
        where = []
        if feature is not None:
            where.append(f"feature {feature}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)
