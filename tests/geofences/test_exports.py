"""Guard the public API other packages code against: names and the one-way import rule."""

from __future__ import annotations

import ast
from pathlib import Path

import geofences

PUBLIC = {
    "DetourPlanner",
    "LastmileError",
    "LocalFrame",
    "Route",
    "VEHICLE_KINDS",
    "Zone",
    "ZoneError",
    "ZoneIndex",
    "ZoneKind",
    "bearing_deg",
    "distance_and_bearing",
    "geodesic_distance_m",
    "load_zones",
    "zones_to_geojson",
}


def test_exported_members() -> None:
    assert set(geofences.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(geofences, name) is not None


def test_geofences_imports_nothing_of_ours_but_itself() -> None:
    root = Path(geofences.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                assert top not in {"vehicles", "controller", "sitl"}, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in {"vehicles", "controller", "sitl"}, path.name
