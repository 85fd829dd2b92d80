"""Shared by the API tests: the test station, its tokens, and a valid package body."""

from __future__ import annotations

from typing import Any

from controller.station import ApiConfig, StationConfig
from controller.tokens import hash_tokens

TOKENS = {"op-token": "operator", "disp-token": "dispatcher", "view-token": "viewer"}
# What the station file holds for them: salted hashes, made once per test process (scrypt is slow on purpose).
HASHED = hash_tokens(TOKENS)  # type: ignore[arg-type]
ROLE_TOKEN = {role: token for token, role in TOKENS.items()}
STATION = (33.4400, -112.2560)  # Tolleson AZ, as in examples/tolleson


def station_config(**api: Any) -> StationConfig:
    """A small station: two drones, a robot (none connected) and two vans."""
    return StationConfig(
        name="test station",
        lat=STATION[0],
        lon=STATION[1],
        tick_s=0.5,
        fleet=[
            {"id": "d1", "kind": "drone"},
            {"id": "d2", "kind": "drone"},
            {"id": "r1", "kind": "robot"},
            {"id": "v1", "kind": "van"},
            {"id": "v2", "kind": "van"},
        ],
        api=ApiConfig(tokens=HASHED, **api),
    )


def package(key: str, **over: Any) -> dict[str, Any]:
    """A valid package body (1.5 lb, 1.2 km from the station) with overrides."""
    body: dict[str, Any] = {
        "key": key,
        "weight": 1.5,
        "weight_unit": "lb",
        "dest_lat": 33.4500,
        "dest_lon": -112.2500,
    }
    body.update(over)
    return body
