"""Does a robot's factsheet say it can run an action the way we are about to send it?

Robots define their own actions and parameters (VDA 5050 §6.10: a load handover is `drop` on most robots, but
its parameters - `stationType`, `loadType`, `loadId` - are the manufacturer's). The factsheet's
`protocolFeatures` lists them (`agvActions` in 2.x, `mobileRobotActions` in 3.0.0), each with its scopes and
`actionParameters` (`key`, `isOptional`). Checking before the order goes out turns a refusal in the field
("order action is not executable: invalid actionParameter") into a clear error at the station.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vehicles.vda5050.versions import VersionInfo

__all__ = ["action_problem"]


def _actions(info: VersionInfo, factsheet: dict[str, Any]) -> list[dict[str, Any]] | None:
    features = factsheet.get("protocolFeatures")
    if not isinstance(features, dict):
        return None
    key = "mobileRobotActions" if info.separate_instant_action_states else "agvActions"
    listed = features.get(key)
    return [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else None


def action_problem(
    info: VersionInfo,
    factsheet: dict[str, Any] | None,
    action_type: str,
    parameter_keys: Iterable[str],
    scope: str = "NODE",
) -> str | None:
    """Why the robot cannot run `action_type` with these parameter keys at `scope`, or None if it can.

    A robot without a factsheet (or one that lists no actions) is given the benefit of the doubt: None.
    Parameters are compared only when the factsheet lists some for the action: every key we send must be
    one it names, and every key it needs (`isOptional` false or absent) must be one we send.
    """
    if factsheet is None:
        return None
    actions = _actions(info, factsheet)
    if not actions:
        return None
    entry = next((a for a in actions if a.get("actionType") == action_type), None)
    if entry is None:
        known = sorted(str(a.get("actionType")) for a in actions)
        return f"action {action_type!r}: not in the robot's factsheet (it lists {', '.join(known)})"
    scopes = {str(s).upper() for s in entry.get("actionScopes") or []}
    if scopes and scope not in scopes:
        return f"action {action_type!r}: the factsheet allows it only as {', '.join(sorted(scopes))}"
    listed = entry.get("actionParameters")
    if not isinstance(listed, list) or not listed:
        return None
    known_keys = {str(p.get("key")) for p in listed if isinstance(p, dict)}
    needed = {str(p.get("key")) for p in listed if isinstance(p, dict) and not p.get("isOptional", False)}
    sent = set(parameter_keys)
    unknown = sorted(sent - known_keys)
    if unknown:
        return (
            f"action {action_type!r}: parameter {', '.join(unknown)} is not in the robot's factsheet "
            f"(it takes {', '.join(sorted(known_keys))})"
        )
    missing = sorted(needed - sent)
    if missing:
        return f"action {action_type!r}: the robot's factsheet requires parameter {', '.join(missing)}"
    return None
