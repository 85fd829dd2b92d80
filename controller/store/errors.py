"""Errors raised by the store. They carry the ids involved so the API can answer 404/409 without parsing.

ControllerError
├── InputError
│   └── IdempotencyConflict   same key, different content (HTTP 409)
├── KeysTaken                 another writer stored a key between check-in and record: check in again
├── UnknownPackage            no package with that id (HTTP 404)
├── UnknownMission            no mission with that id
├── StoreOpenError            the database cannot be opened or upgraded
└── InvalidTransition         (controller.packages) an illegal state change
    └── StateMismatch         the optimistic `expect=` check failed
"""

from __future__ import annotations

from controller.errors import ControllerError, InputError

__all__ = ["IdempotencyConflict", "KeysTaken", "StoreOpenError", "UnknownMission", "UnknownPackage"]


class IdempotencyConflict(InputError):
    """A key that is already used by a package with different content; nothing was stored."""

    def __init__(self, key: str, *, package_id: str | None = None, row: int | str | None = None) -> None:
        self.key = key
        self.package_id = package_id
        super().__init__(
            f"key {key!r} is already used by package {package_id} with different content; "
            "use a new key for a new package, or resend exactly the same content",
            field="key",
            row=row,
        )


class KeysTaken(ControllerError):
    """Another writer stored one of a submission's keys after `Store.check_in` read them; nothing was stored.

    Checking in again sees that writer's package and compares content as usual.
    """

    def __init__(self) -> None:
        super().__init__("another writer stored one of these keys meanwhile; check the submission in again")


class UnknownPackage(ControllerError):
    """No package has this id."""

    def __init__(self, package_id: str) -> None:
        self.package_id = package_id
        super().__init__(f"no package with id {package_id!r}")


class UnknownMission(ControllerError):
    """No mission has this id."""

    def __init__(self, mission_id: str) -> None:
        self.mission_id = mission_id
        super().__init__(f"no mission with id {mission_id!r}")


class StoreOpenError(ControllerError):
    """The database cannot be used: unreachable, or its schema is newer than this release knows."""
