"""Bytes <-> VDA 5050 messages: topics, headers, JSON and schema checks.

The schemas are the official ones, shipped as package data (`schemas/<version>/<topic>.json`) so a user's
install does not need the repository's `../shared` folder. Validators are built once per (version, topic)
because compiling a draft 2020-12 schema costs far more than checking one message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from vehicles.vda5050.errors import MalformedMessage
from vehicles.vda5050.fastcheck import Check, UnsupportedSchema, compile_schema
from vehicles.vda5050.versions import SUPPORTED_VERSIONS, VersionInfo

__all__ = [
    "ROBOT_TOPICS",
    "TopicAddress",
    "checker",
    "decode",
    "encode",
    "header",
    "load_schema",
    "parse_topic",
    "timestamp",
    "validator",
]

# Topics a robot publishes (the controller subscribes to these).
ROBOT_TOPICS = ("state", "connection", "factsheet", "visualization")
# 2.0.0 and 2.1.0 share `uagv/v2`: the topic gives the newest of a major; the robot's own version decides
_BY_PREFIX = {(v.interface, v.major): v for v in SUPPORTED_VERSIONS.values()}


def timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, as both versions' schemas show (`...:03.123Z`)."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def header(info: VersionInfo, header_id: int, manufacturer: str, serial_number: str) -> dict[str, Any]:
    """The five header fields every VDA 5050 message starts with."""
    return {
        "headerId": header_id,
        "timestamp": timestamp(),
        "version": info.version,
        "manufacturer": manufacturer,
        "serialNumber": serial_number,
    }


@cache
def load_schema(version: str, topic: str) -> dict[str, Any]:
    """The shipped official schema of `topic` ("state", "order", ...) in `version`."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"version={version!r}: unsupported, expected one of {sorted(SUPPORTED_VERSIONS)}")
    path = (
        resources.files("vehicles.vda5050")
        .joinpath("schemas")
        .joinpath(f"v{version}")
        .joinpath(f"{topic}.json")
    )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"topic={topic!r}: VDA 5050 {version} has no such topic schema") from None


@cache
def validator(version: str, topic: str) -> Draft202012Validator:
    """A compiled validator for one topic of one version (cached)."""
    return Draft202012Validator(load_schema(version, topic))


@cache
def checker(version: str, topic: str) -> Check:
    """The fast compiled check for one topic (see `fastcheck`), or jsonschema where the compiler refuses."""
    try:
        return compile_schema(load_schema(version, topic))
    except UnsupportedSchema:
        slow = validator(version, topic)

        def check(message: Any) -> tuple[str, str] | None:
            error = next(iter(slow.iter_errors(message)), None)
            if error is None:
                return None
            return "/".join(str(p) for p in error.absolute_path), error.message

        return check


@dataclass(frozen=True)
class TopicAddress:
    """Where a message came from, parsed out of its MQTT topic."""

    info: VersionInfo
    manufacturer: str
    serial_number: str
    subtopic: str


def parse_topic(topic: str) -> TopicAddress:
    """`uagv/v2/<manufacturer>/<serial>/<subtopic>` -> its parts; MalformedMessage if it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or not all(parts):
        raise MalformedMessage("bad_topic", f"topic {topic!r}: expected 5 levels <interface>/<major>/...")
    info = _BY_PREFIX.get((parts[0], parts[1]))
    if info is None:
        raise MalformedMessage(
            "bad_topic", f"topic {topic!r}: unknown interface/version {parts[0]}/{parts[1]}"
        )
    return TopicAddress(info, parts[2], parts[3], parts[4])


def _same_topics(version: str, info: VersionInfo) -> bool:
    """Is `version` a supported version other than `info`'s that shares its topics (2.0.0 / 2.1.0)?"""
    other = SUPPORTED_VERSIONS.get(version)
    return (
        other is not None
        and other is not info
        and (other.interface, other.major) == (info.interface, info.major)
    )


def encode(message: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (robots on cellular links pay per byte)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def decode(
    payload: bytes | bytearray | str,
    address: TopicAddress,
    *,
    max_bytes: int,
    validate: bool = True,
    info: VersionInfo | None = None,
) -> dict[str, Any]:
    """Parse and check one received message; MalformedMessage (with a `kind` to count) if it is unusable.

    `info` is the version the robot speaks (default: the topic's); a message whose header `version` is of
    another major version is refused (`version_mismatch`) before its schema is looked at, because a 3.0.0
    state read as 2.x would be misread field by field. Checks in order of cost: size, JSON, object type,
    header version, the schema, then the serial number matching the topic.
    """
    info = info or address.info
    if isinstance(payload, str):
        payload = payload.encode()
    if len(payload) > max_bytes:
        raise MalformedMessage("oversized", f"{len(payload)} bytes > limit {max_bytes}")
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage("bad_json", f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedMessage("bad_json", f"expected a JSON object, got {type(message).__name__}")
    claimed_version = message.get("version")
    if not isinstance(claimed_version, str) or claimed_version.split(".", 1)[0] != info.major_number:
        reason = (
            f"field version: {str(claimed_version)[:32]!r} is not VDA 5050 {info.major_number}.x "
            f"(this robot speaks {info.version})"
        )
        raise MalformedMessage("version_mismatch", reason)
    if address.subtopic == "factsheet" and _same_topics(claimed_version, info):
        # a factsheet is the robot saying which version it speaks (2.0.0 or 2.1.0 on uagv/v2): read it
        # in that version, so a robot configured as the other can be set right from it (RobotHandle)
        info = SUPPORTED_VERSIONS[claimed_version]
    if validate:
        try:
            check = checker(info.version, address.subtopic)
        except ValueError:
            raise MalformedMessage("bad_topic", f"no {address.subtopic!r} topic in VDA 5050") from None
        problem = check(message)
        if problem is not None:
            where, reason = problem
            raise MalformedMessage("schema_invalid", f"field {where or '(root)'}: {reason}")
    claimed = message.get("serialNumber")
    if claimed != address.serial_number:
        reason = f"field serialNumber: {str(claimed)[:64]!r} is not the topic's {address.serial_number!r}"
        raise MalformedMessage("header_mismatch", reason)
    return message
