"""What the simulated robot does with a message before obeying it: parse, check, or refuse with a reason.

A robot that cannot use a message says so in its state as a `validationError` whose `errorReferences` name
what it could read of the message (topic, headerId, orderId, actionIds) and whose description is the
reason (the schema's words where the schema refuses it): without those references a master cannot tell
which of its messages failed, and an operator's cancel would fail silently (issue 22).

Checks, in order: JSON object, header `version` of this robot's major version (VDA 5050: the topic's
`v2`/`v3` level is the major; a 3.0.0 message read as 2.x would be misread field by field), serial
number, the official schema of the robot's version (the same files the controller ships, read as data),
and for 2.0.0 the `instantActions` key that the official 2.0.0 schema file does not require.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from sitl.robot.wire import Wire

__all__ = ["Refusal", "read_message"]


class Refusal(ValueError):
    """A message the robot will not act on; `error` is the state error that reports it."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        super().__init__(error["errorDescription"])


@cache
def _validator(version: str, topic: str) -> Draft202012Validator:
    path = resources.files("vehicles.vda5050").joinpath("schemas", f"v{version}", f"{topic}.json")
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def _references(wire: Wire, topic: str, body: Any) -> list[dict[str, str]]:
    refs = [{"referenceKey": "topic", "referenceValue": topic}]
    if not isinstance(body, dict):
        return refs
    if isinstance(body.get("headerId"), int) and not isinstance(body.get("headerId"), bool):
        refs.append({"referenceKey": "headerId", "referenceValue": str(body["headerId"])})
    if topic == "order":
        for key in ("orderId", "orderUpdateId"):
            if isinstance(body.get(key), str | int) and not isinstance(body.get(key), bool):
                refs.append({"referenceKey": key, "referenceValue": str(body[key])})
    else:
        actions = body.get(wire.instant_key, body.get("actions", body.get("instantActions")))
        for action in actions if isinstance(actions, list) else []:
            if isinstance(action, dict) and isinstance(action.get("actionId"), str):
                refs.append({"referenceKey": "actionId", "referenceValue": action["actionId"]})
    return refs


def _refuse(wire: Wire, topic: str, body: Any, reason: str) -> Refusal:
    return Refusal(
        {
            "errorType": "validationError",
            "errorLevel": "WARNING",
            "errorDescription": f"{topic}: {reason}"[:500],
            "errorReferences": _references(wire, topic, body),
        }
    )


def read_message(wire: Wire, serial: str, topic: str, payload: bytes | bytearray | str) -> dict[str, Any]:
    """The usable message on subtopic `topic` ("order" or "instantActions"); Refusal says why not."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(wire, topic, None, f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _refuse(wire, topic, body, f"expected a JSON object, got {type(body).__name__}")
    version = body.get("version")
    if not isinstance(version, str) or version.split(".", 1)[0] != wire.major:
        raise _refuse(
            wire, topic, body, f"field version: {str(version)[:32]!r} is not VDA 5050 {wire.major}.x "
            f"(this robot speaks {wire.version})"
        )  # fmt: skip
    if body.get("serialNumber") != serial:
        raise _refuse(
            wire, topic, body, f"field serialNumber: {str(body.get('serialNumber'))[:64]!r} is not {serial!r}"
        )
    if topic == "instantActions" and not isinstance(body.get(wire.instant_key), list):
        others = [k for k in ("actions", "instantActions") if k != wire.instant_key and k in body]
        hint = (
            f" (VDA 5050 {wire.version} calls it {wire.instant_key!r}, not {others[0]!r})" if others else ""
        )
        raise _refuse(wire, topic, body, f"field {wire.instant_key}: required array missing{hint}")
    error = next(iter(_validator(wire.version, topic).iter_errors(body)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise _refuse(wire, topic, body, f"field {where}: {error.message[:200]}")
    return body
