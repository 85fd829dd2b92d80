"""Where each vehicle kind can go: station-to-destination routes, detours, and the geometric "no"s.

Geometry depends on the vehicle kind (drones obey no-fly zones at cruise altitude, robots no-go zones
on the ground) but not on the individual vehicle, so it is computed once per kind for all packages and
shared by every vehicle of that kind. Drones fly out and back along the same route; both directions are
checked, because "the path out and back is checked" is a safety rule, not an assumption.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from controller.reasons import Reason, operating_area_hint, range_hint, zone_hint
from geofences import DetourPlanner, LocalFrame, Route, Zone, ZoneIndex, distance_and_bearing

# Keep this far from exclusion zones when planning detours; the vehicle's own fence uses the zone itself.
DETOUR_CLEARANCE_M = 60.0


@dataclass(frozen=True)
class KindRoutes:
    """Routes of one vehicle kind from the station to every package destination.

    `route_m` is NaN where no route exists; `reason`/`hint` say why (None where a route exists).
    """

    kind: str
    distance_m: np.ndarray  # (P,) straight-line geodesic distance
    route_m: np.ndarray  # (P,) length of the route flown/driven one way, NaN if none
    bearing_deg: np.ndarray  # (P,) bearing from the station to the destination
    routes: list[Route | None]  # (P,) waypoints (lon, lat) incl. both ends
    reason: list[Reason | None]
    hint: list[str | None]


# A destination's route in the router's cache: distance, route length, bearing, route, reason, hint.
_Entry = tuple[float, float, float, Route | None, Reason | None, str | None]

# No drone or robot trip lasts longer than this (a battery's worth): zones that come into force within it
# already bind a trip that starts now.
TRIP_WINDOW_S = 3600.0


def zones_for_trip(zones: Sequence[Zone], start: datetime | None, end: datetime | None) -> list[Zone]:
    """The zones that bind a trip flown between `start` and `end`, as if always in force.

    A trip must avoid every exclusion that is active at any moment of it (a TFR starting while the drone is
    out) and may only count on operating areas that are active for all of it. `start=None`: every zone.
    """
    if start is None:
        return list(zones)
    out = []
    for zone in zones:
        if zone.is_exclusion:
            if zone.active_during(start, end):
                out.append(zone)
        elif (zone.active_from is None or zone.active_from <= start) and (
            zone.active_until is None or (end is not None and zone.active_until >= end)
        ):
            out.append(zone)
    return out


def router_signature(
    binding: Sequence[Zone], kind: str, radius_m: float, altitude_m: float | None
) -> tuple[object, ...]:
    """What a router's routes depend on: kind, radius, and the ids of the zones `ZoneIndex` selects from
    `binding` (already chosen for the trip's time): exclusions, operating areas at this altitude, and
    operating areas by kind alone (which forbid everything when none covers the altitude). Routers with
    equal signatures give the same routes."""
    exclusions = tuple(z.id for z in binding if z.is_exclusion and z.applies(kind, altitude_m=altitude_m))
    gate = tuple(z.id for z in binding if not z.is_exclusion and z.applies(kind))
    areas = tuple(z.id for z in binding if z.id in gate and z.applies(kind, altitude_m=altitude_m))
    return (kind, radius_m, exclusions, areas, gate)


def trip_signature(
    zones: Sequence[Zone], kind: str, radius_m: float, at: datetime, altitude_m: float | None
) -> tuple[object, ...]:
    """The signature a router built at `at` would have, without building its zone index: lets a
    planner keep last tick's router (routes and detour graph) while the same zones bind."""
    binding = zones_for_trip(zones, at, at + timedelta(seconds=TRIP_WINDOW_S))
    return router_signature(binding, kind, radius_m, altitude_m)


class KindRouter:
    """Zone index and detour planner of one vehicle kind at one station and instant, built once.

    The index holds the zones that bind a trip starting at `at` (see `zones_for_trip`), not just those
    in force at that instant.
    """

    def __init__(
        self,
        zones: Sequence[Zone],
        frame: LocalFrame,
        kind: str,
        *,
        radius_m: float,
        at: datetime | None = None,
        altitude_m: float | None = None,
    ) -> None:
        self.kind = kind
        self.frame = frame
        self.radius_m = radius_m
        end = at + timedelta(seconds=TRIP_WINDOW_S) if at is not None else None
        binding = zones_for_trip(zones, at, end)
        self.index = ZoneIndex(binding, frame, kind, altitude_m=altitude_m)
        self.signature = router_signature(binding, kind, radius_m, altitude_m)
        self._planner: DetourPlanner | None = None
        # Destinations do not move between ticks, so a package's route is computed once while the same
        # zones are in force; a tick then only pays for new packages. The cache holds the destinations of
        # the last call only (a tick plans every waiting package), so it never outgrows the queue: a
        # controller running for days would otherwise keep every destination it ever planned.
        self._cache: dict[tuple[float, float], _Entry] = {}

    @property
    def planner(self) -> DetourPlanner:
        """The visibility graph is only worth building when some straight line is blocked."""
        if self._planner is None:
            self._planner = DetourPlanner(self.index, clearance_m=DETOUR_CLEARANCE_M)
        return self._planner

    def routes(self, lat: np.ndarray, lon: np.ndarray) -> KindRoutes:
        """Route every destination, reusing routes already computed for the same destinations."""
        keys = list(zip(lat.tolist(), lon.tolist(), strict=True))
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if len(missing) == len(keys):  # nothing to reuse (a pass of new packages only): as computed
            fresh = self._compute(lat, lon)
            self._cache = dict(zip(keys, _entries(fresh), strict=True))
            return fresh
        if missing:
            fresh = self._compute(lat[missing], lon[missing])
            for i, entry in zip(missing, _entries(fresh), strict=True):
                self._cache[keys[i]] = entry
        rows = [self._cache[key] for key in keys]
        if len(self._cache) > len(keys):
            self._cache = dict(zip(keys, rows, strict=True))
        columns = list(zip(*rows, strict=True)) if rows else [()] * 6
        return KindRoutes(
            self.kind,
            np.asarray(columns[0], dtype=float),
            np.asarray(columns[1], dtype=float),
            np.asarray(columns[2], dtype=float),
            list(columns[3]),
            list(columns[4]),
            list(columns[5]),
        )

    def _compute(self, lat: np.ndarray, lon: np.ndarray) -> KindRoutes:
        """Straight lines are checked in one vectorized call; detours are searched only where blocked."""
        n = len(lat)
        station = (self.frame.lon, self.frame.lat)
        slon = np.full(n, self.frame.lon)
        slat = np.full(n, self.frame.lat)
        distance, bearing = distance_and_bearing(slon, slat, lon, lat)
        route_m = np.full(n, np.nan)
        routes: list[Route | None] = [None] * n
        reason: list[Reason | None] = [None] * n
        hint: list[str | None] = [None] * n

        in_range = distance <= self.radius_m
        distances = distance.tolist()
        for i in np.flatnonzero(~in_range).tolist():
            reason[i] = Reason.OUT_OF_RANGE
            hint[i] = range_hint(self.kind, distances[i], self.radius_m)

        candidates = np.flatnonzero(in_range)
        if candidates.size == 0:
            return KindRoutes(self.kind, distance, route_m, bearing, routes, reason, hint)
        # Into the station frame once: the zone checks work there, and the start of every leg is the station.
        x, y = self.frame.to_local(lon[candidates], lat[candidates])
        allowed = self.index.points_allowed_xy(x, y)
        for i in candidates[~allowed]:
            zone = self.index.zone_containing(float(lon[i]), float(lat[i]))
            if zone is None:
                reason[i] = Reason.OUTSIDE_OPERATING_AREA
                hint[i] = operating_area_hint(self.kind)
            else:
                reason[i] = Reason.EXCLUSION_ZONE
                hint[i] = zone_hint(self.kind, zone.id, inside=True)

        reachable = candidates[allowed]
        sx, sy = (float(v[0]) for v in self.frame.to_local(slon[:1], slat[:1]))
        k = len(reachable)
        clear = self.index.segments_clear_xy(np.full(k, sx), np.full(k, sy), x[allowed], y[allowed])
        straight = reachable[clear]
        route_m[straight] = distance[straight]
        lons, lats = lon.tolist(), lat.tolist()
        for i in straight.tolist():
            routes[i] = Route(waypoints=[station, (lons[i], lats[i])], length_m=distances[i], detoured=False)
        blocked = reachable[~clear]
        if blocked.size:
            blockers = self.index.blocking_zone_ids(slon[blocked], slat[blocked], lon[blocked], lat[blocked])
            starts = np.column_stack([slon[blocked], slat[blocked]])
            ends = np.column_stack([lon[blocked], lat[blocked]])
            found = self.planner.routes(starts, ends)
            # The planner's promise, checked independently in one call: out and back both stay clear.
            paths = [list(r.waypoints) for r in found if r is not None]
            verdict = iter(
                self.index.paths_clear(paths + [p[::-1] for p in paths]).reshape(2, -1).all(axis=0)
                if paths
                else []
            )
            for i, blocker, route in zip(blocked, blockers, found, strict=True):
                if route is None or not next(verdict):
                    reason[i] = Reason.EXCLUSION_ZONE
                    hint[i] = zone_hint(self.kind, blocker, inside=False)
                    continue
                routes[i] = route
                route_m[i] = route.length_m
        return KindRoutes(self.kind, distance, route_m, bearing, routes, reason, hint)


def _entries(routes: KindRoutes) -> Iterator[_Entry]:
    """Each destination's route as a cache entry, in order."""
    return zip(
        routes.distance_m.tolist(),  # Python floats in one call, not a numpy scalar per item
        routes.route_m.tolist(),
        routes.bearing_deg.tolist(),
        routes.routes,
        routes.reason,
        routes.hint,
        strict=True,
    )
