"""Records the store returns besides packages: missions, so the mission layer can resume after a restart."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MISSION_KINDS", "MISSION_TERMINAL_STATES", "Mission"]

MissionKind = Literal["drone", "robot", "van"]
MISSION_KINDS: frozenset[str] = frozenset({"drone", "robot", "van"})
# Mission states belong to the mission layer and are free text here; these end a mission, and
# `Store.missions(unfinished_only=True)` leaves them out.
MISSION_TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "aborted", "cancelled"})


class Mission(BaseModel):
    """One vehicle's job for one package, with the plan that was (or will be) uploaded to the vehicle."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    package_id: str
    vehicle_id: str
    kind: MissionKind
    state: str
    plan: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        """True once the mission layer has nothing more to do for it."""
        return self.state in MISSION_TERMINAL_STATES
