"""Vectorized "is this allowed" checks for points, segments and paths against a station's zones.

The assignment engine asks about thousands of (station -> destination) legs per tick, so every check
takes arrays: an STRtree over the exclusions (in the station's metric frame, grown by the safety margin)
finds candidate pairs by bounding box; numpy settles most pairs with two discs per zone (one holding it,
one inside it); prepared GEOS predicates decide only the few pairs left. Asking GEOS about every
candidate pair instead ran at ~5,000 segments/s against 1,000 zones; this runs above 100,000/s.

A segment is clear when it does not enter the interior of any exclusion (running along an edge is
allowed) and stays inside the union of the operating areas, when any apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import shapely
from numpy.typing import ArrayLike
from shapely.geometry.base import BaseGeometry

from geofences.frame import LocalFrame
from geofences.zones import VEHICLE_KINDS, Zone

__all__ = ["CIRCLE_QUAD_SEGS", "ZoneIndex", "zone_geometry_xy"]

# A circle becomes a 4 * 32 = 128-gon: the polygon's edges stray from the true circle by < 0.03 % of r.
CIRCLE_QUAD_SEGS = 32
# Polygon edges are straight in lon/lat (RFC 7946); densify them before projecting so they stay close to
# that line in the local frame too (0.005 degrees is about 550 m).
_DENSIFY_DEG = 0.005
# Segments per batch in the vectorized segment checks (see ZoneIndex._exclusion_hits).
_CHUNK = 1024


def zone_geometry_xy(zone: Zone, frame: LocalFrame, *, outer: bool = True) -> BaseGeometry:
    """The zone's area in `frame` metres; circles as polygons, circumscribed when `outer` else inscribed.

    Exclusions use the circumscribed polygon (it contains the whole true circle) and operating areas the
    inscribed one (it lies inside it), so the approximation is always on the safe side.
    """
    if zone.geometry.geom_type == "Point":
        assert zone.radius_m is not None  # guaranteed by load_zones / Zone construction
        centre = frame.geometry_to_local(zone.geometry)
        radius = zone.radius_m / math.cos(math.pi / (4 * CIRCLE_QUAD_SEGS)) if outer else zone.radius_m
        return centre.buffer(radius, quad_segs=CIRCLE_QUAD_SEGS)
    return frame.geometry_to_local(shapely.segmentize(zone.geometry, _DENSIFY_DEG))


def _as_1d(*arrays: ArrayLike) -> list[np.ndarray]:
    out = np.broadcast_arrays(*(np.atleast_1d(np.asarray(a, dtype=float)) for a in arrays))
    return [np.ravel(a) for a in out]


class _Discs:
    """Per polygon part, a disc that holds it and a disc inside it, to settle most segment tests in numpy.

    A segment that stays at least R from the outer centre cannot enter the part's interior; one that comes
    closer than r to the inner centre certainly does. Circles (128-gons) leave almost nothing in between.
    """

    _GUARD_M = 1e-6  # float noise in the distance arithmetic is ~1e-8 m at 20 km; stay well clear of it

    def __init__(self, parts: np.ndarray) -> None:
        n = len(parts)
        self.out_c = np.zeros((n, 2))
        self.out_r = np.zeros(n)
        self.in_c = np.zeros((n, 2))
        self.in_r = np.zeros(n)
        for i, part in enumerate(parts):
            coords = shapely.get_coordinates(part)
            c = shapely.get_coordinates(shapely.centroid(shapely.minimum_bounding_circle(part)))[0]
            self.out_c[i] = c
            self.out_r[i] = float(np.max(np.hypot(coords[:, 0] - c[0], coords[:, 1] - c[1])))
            tol = max(math.sqrt(part.area) * 0.01, 1e-3)
            centre = shapely.get_point(shapely.maximum_inscribed_circle(part, tolerance=tol), 0)
            if shapely.contains_properly(part, centre):
                self.in_c[i] = shapely.get_coordinates(centre)[0]
                self.in_r[i] = float(shapely.distance(centre, part.boundary))
        self.out_r += self._GUARD_M
        self.in_r = np.maximum(self.in_r - self._GUARD_M, 0.0)

    def classify(
        self, part: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(certainly enters, undecided) masks for segment/part pairs (segment coordinates per pair)."""
        near = _point_segment_distance(self.out_c[part], x0, y0, x1, y1) < self.out_r[part]
        hit = np.zeros(len(part), dtype=bool)
        idx = np.flatnonzero(near)
        if len(idx):
            p = part[idx]
            hit[idx] = (
                _point_segment_distance(self.in_c[p], x0[idx], y0[idx], x1[idx], y1[idx]) < self.in_r[p]
            )
        return hit, near & ~hit


def _inner_disc(area: BaseGeometry) -> tuple[tuple[float, float], float]:
    """A disc inside the largest part of `area` ((0, 0), 0 when empty): a fast "surely inside" test."""
    parts = shapely.get_parts(area)
    if area.is_empty or not len(parts):
        return (0.0, 0.0), 0.0
    part = max(parts, key=lambda g: g.area)
    tol = max(math.sqrt(part.area) * 0.01, 1e-3)
    centre = shapely.get_point(shapely.maximum_inscribed_circle(part, tolerance=tol), 0)
    if not shapely.contains_properly(part, centre):
        return (0.0, 0.0), 0.0
    radius = float(shapely.distance(centre, part.boundary)) - _Discs._GUARD_M
    return (float(centre.x), float(centre.y)), max(radius, 0.0)


def _point_segment_distance(
    p: np.ndarray, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray
) -> np.ndarray:
    dx, dy = x1 - x0, y1 - y0
    px, py = p[:, 0] - x0, p[:, 1] - y0
    len2 = dx * dx + dy * dy
    t = (px * dx + py * dy) / np.where(len2 > 0.0, len2, 1.0)
    np.clip(t, 0.0, 1.0, out=t)
    return np.hypot(px - t * dx, py - t * dy)


class ZoneIndex:
    """Active zones for one vehicle kind, projected into a station frame: STRtree + prepared geometry.

    `exclusions` and `operating_areas` are the zones that apply for the vehicle kind at `at` and
    `altitude_m` (None: ignore that filter, which is the conservative choice for exclusions). When some
    operating area applies by kind and time but none covers `altitude_m` (flying above every ceiling),
    nothing is allowed. `margin_m` grows every exclusion and shrinks the operating areas.
    """

    def __init__(
        self,
        zones: Sequence[Zone],
        frame: LocalFrame,
        vehicle_kind: str,
        *,
        at: datetime | None = None,
        altitude_m: float | None = None,
        margin_m: float = 0.0,
    ) -> None:
        if vehicle_kind not in VEHICLE_KINDS:
            raise ValueError(f"vehicle_kind {vehicle_kind!r}: must be one of {sorted(VEHICLE_KINDS)}")
        if not (math.isfinite(margin_m) and margin_m >= 0.0):
            raise ValueError(f"margin_m {margin_m!r}: must be a finite number >= 0")
        self.frame = frame
        self.vehicle_kind = vehicle_kind
        self.at = at
        self.altitude_m = altitude_m
        self.margin_m = float(margin_m)
        self._zones = tuple(zones)
        self.exclusions: list[Zone] = [
            z for z in zones if z.is_exclusion and z.applies(vehicle_kind, at=at, altitude_m=altitude_m)
        ]
        gate = [z for z in zones if not z.is_exclusion and z.applies(vehicle_kind, at=at)]
        self.operating_areas: list[Zone] = [z for z in gate if z.applies(vehicle_kind, altitude_m=altitude_m)]
        self._gate = gate

        geoms = [zone_geometry_xy(z, frame, outer=True) for z in self.exclusions]
        if self.margin_m > 0.0:
            geoms = [g.buffer(self.margin_m, quad_segs=8) for g in geoms]
        self._excl = np.array(geoms, dtype=object)
        shapely.prepare(self._excl)
        # Multipolygons are split so each tree entry has a tight box and tight circles (see _Discs).
        parts, part_zone = shapely.get_parts(self._excl, return_index=True) if len(geoms) else ([], [])
        self._parts = np.asarray(parts, dtype=object)
        self._part_zone = np.asarray(part_zone, dtype=np.intp)
        shapely.prepare(self._parts)
        self._tree = shapely.STRtree(self._parts)
        self._discs = _Discs(self._parts)

        self._op_geoms = np.array(
            [zone_geometry_xy(z, frame, outer=False) for z in (self.operating_areas or gate)], dtype=object
        )
        self._op_union: BaseGeometry | None = None
        if gate:
            parts = [zone_geometry_xy(z, frame, outer=False) for z in self.operating_areas]
            union = shapely.union_all(parts) if parts else shapely.Polygon()
            if self.margin_m > 0.0 and not union.is_empty:
                union = union.buffer(-self.margin_m, quad_segs=8)
            shapely.prepare(union)
            self._op_union = union
            self._op_disc = _inner_disc(union)

    def widened(self, extra_m: float) -> ZoneIndex:
        """The same zones, time and altitude with `extra_m` more margin (a stricter twin for planning)."""
        return ZoneIndex(
            self._zones,
            self.frame,
            self.vehicle_kind,
            at=self.at,
            altitude_m=self.altitude_m,
            margin_m=self.margin_m + extra_m,
        )

    # --- geometry for other modules (detours) ---------------------------------------------------------

    @property
    def exclusion_geometries_xy(self) -> np.ndarray:
        """Local-frame exclusion polygons (margin included), aligned with `exclusions`."""
        return self._excl

    @property
    def allowed_area_xy(self) -> BaseGeometry | None:
        """Local-frame union of the operating areas (margin applied), or None when no operating area binds."""
        return self._op_union

    # --- points -----------------------------------------------------------------------------------------

    def points_allowed_xy(self, x: ArrayLike, y: ArrayLike) -> np.ndarray:
        """Outside every exclusion's interior (+margin) and inside the operating-area union if any applies."""
        x, y = _as_1d(x, y)
        pts = shapely.points(x, y)
        ok = np.ones(len(pts), dtype=bool)
        if len(self._excl):
            hit, _ = self._tree.query(pts, predicate="within")
            ok[hit] = False
        if self._op_union is not None:
            ok &= shapely.covered_by(pts, self._op_union)
        return ok

    def points_allowed(self, lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
        """`points_allowed_xy` for WGS84 lon/lat degrees."""
        lon, lat = _as_1d(lon, lat)
        return self.points_allowed_xy(*self.frame.to_local(lon, lat))

    def zone_containing(self, lon: float, lat: float) -> Zone | None:
        """The first exclusion (in input order) whose interior (+margin) holds the point, else None."""
        x, y = self.frame.to_local(lon, lat)
        if not len(self._excl):
            return None
        _, hit = self._tree.query(shapely.points(np.atleast_1d(x), np.atleast_1d(y)), predicate="within")
        return self.exclusions[int(self._part_zone[hit].min())] if len(hit) else None

    # --- segments ---------------------------------------------------------------------------------------

    def _exclusion_hits(
        self, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(segment index, exclusion index) pairs where the segment enters the exclusion's interior.

        Candidates come from the STRtree by bounding box; most are settled by `_Discs` in numpy and only
        the few passing between a part's inner and outer circle go to GEOS.
        """
        if not len(self._parts) or not len(x0):
            empty = np.empty(0, dtype=np.intp)
            return empty, empty
        if len(x0) > _CHUNK:
            # Chunks keep the pair arrays small enough to be reused by the allocator: fresh large arrays
            # cost a page fault per 4 KiB, which dominated the run time on small VMs.
            got = [
                self._exclusion_hits(
                    x0[i : i + _CHUNK], y0[i : i + _CHUNK], x1[i : i + _CHUNK], y1[i : i + _CHUNK]
                )
                for i in range(0, len(x0), _CHUNK)
            ]
            segs = [g[0] + i for g, i in zip(got, range(0, len(x0), _CHUNK), strict=True)]
            return np.concatenate(segs), np.concatenate([g[1] for g in got])
        lo = np.column_stack([np.minimum(x0, x1), np.minimum(y0, y1)])
        hi = np.column_stack([np.maximum(x0, x1), np.maximum(y0, y1)])
        seg, part = self._tree.query(shapely.box(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]))
        hit, unsure = self._discs.classify(part, x0[seg], y0[seg], x1[seg], y1[seg])
        if unsure.any():
            s, p = seg[unsure], part[unsure]
            lines = self._lines(x0[s], y0[s], x1[s], y1[s])
            # Intersecting but only touching (along an edge, or at a corner) does not enter the interior.
            enters = shapely.intersects(self._parts[p], lines)
            touch = np.flatnonzero(enters)
            enters[touch] = ~shapely.touches(self._parts[p[touch]], lines[touch])
            hit[unsure] = enters
        return seg[hit], self._part_zone[part[hit]]

    def _lines(self, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
        coords = np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1)
        return shapely.linestrings(coords)

    def segments_clear_xy(self, x0: ArrayLike, y0: ArrayLike, x1: ArrayLike, y1: ArrayLike) -> np.ndarray:
        """For each segment (x0, y0) -> (x1, y1) in metres: True when it is clear; vectorized."""
        x0, y0, x1, y1 = _as_1d(x0, y0, x1, y1)
        clear = np.ones(len(x0), dtype=bool)
        point = (x0 == x1) & (y0 == y1)
        if point.any():  # a zero-length segment is a point; GEOS treats it as an invalid line
            clear[point] = self.points_allowed_xy(x0[point], y0[point])
        line_idx = np.flatnonzero(~point)
        if not len(line_idx):
            return clear
        seg, _ = self._exclusion_hits(x0[line_idx], y0[line_idx], x1[line_idx], y1[line_idx])
        clear[line_idx[seg]] = False
        if self._op_union is not None:
            rest = line_idx[clear[line_idx]]
            # Both ends inside a disc that lies inside the area: the whole segment is (a disc is convex).
            (cx, cy), r = self._op_disc
            inside = np.hypot(x0[rest] - cx, y0[rest] - cy) < r
            inside &= np.hypot(x1[rest] - cx, y1[rest] - cy) < r
            rest = rest[~inside]
            lines = self._lines(x0[rest], y0[rest], x1[rest], y1[rest])
            clear[rest] = shapely.covered_by(lines, self._op_union)
        return clear

    def segments_clear(
        self, lon0: ArrayLike, lat0: ArrayLike, lon1: ArrayLike, lat1: ArrayLike
    ) -> np.ndarray:
        """`segments_clear_xy` for WGS84 endpoints; the segment is straight in the station frame."""
        lon0, lat0, lon1, lat1 = _as_1d(lon0, lat0, lon1, lat1)
        x0, y0 = self.frame.to_local(lon0, lat0)
        x1, y1 = self.frame.to_local(lon1, lat1)
        return self.segments_clear_xy(x0, y0, x1, y1)

    def blocking_zone_ids(
        self, lon0: ArrayLike, lat0: ArrayLike, lon1: ArrayLike, lat1: ArrayLike
    ) -> list[str | None]:
        """Per segment: the id of the first zone it enters (by distance from its start), None when clear.

        Leaving the operating areas is reported as ``"outside:<id>"`` with the operating area holding the
        start (or the nearest one), so an operator sees which boundary the leg crosses.
        """
        lon0, lat0, lon1, lat1 = _as_1d(lon0, lat0, lon1, lat1)
        x0, y0 = self.frame.to_local(lon0, lat0)
        x1, y1 = self.frame.to_local(lon1, lat1)
        n = len(x0)
        first_d = np.full(n, np.inf)
        first_id: list[str | None] = [None] * n
        starts = shapely.points(x0, y0)
        point = (x0 == x1) & (y0 == y1)
        lines = np.array([None] * n, dtype=object)
        lines[~point] = self._lines(x0[~point], y0[~point], x1[~point], y1[~point])
        geoms = np.where(point, starts, lines)

        if len(self._excl):
            line_idx = np.flatnonzero(~point)
            seg, zone = self._exclusion_hits(x0[line_idx], y0[line_idx], x1[line_idx], y1[line_idx])
            seg = line_idx[seg]
            pt_idx = np.flatnonzero(point)
            if len(pt_idx):
                pseg, ppart = self._tree.query(starts[pt_idx], predicate="within")
                seg = np.concatenate([seg, pt_idx[pseg]])
                zone = np.concatenate([zone, self._part_zone[ppart]])
            if len(seg):
                d = shapely.distance(starts[seg], shapely.intersection(geoms[seg], self._excl[zone]))
                # Sort by (segment, distance, zone order) and keep the first row per segment.
                order = np.lexsort((zone, d, seg))
                seg, zone, d = seg[order], zone[order], d[order]
                keep = np.ones(len(seg), dtype=bool)
                keep[1:] = seg[1:] != seg[:-1]
                for s, z, dist in zip(seg[keep], zone[keep], d[keep], strict=True):
                    first_d[s] = dist
                    first_id[s] = self.exclusions[z].id

        if self._op_union is not None:
            out = np.flatnonzero(~shapely.covered_by(geoms, self._op_union))
            if len(out):
                outside = shapely.difference(geoms[out], self._op_union)
                d = shapely.distance(starts[out], outside)
                for s, dist in zip(out, d, strict=True):
                    if dist < first_d[s] or first_id[s] is None:
                        first_d[s] = dist
                        first_id[s] = f"outside:{self._operating_area_near(starts[s])}"
        return first_id

    def _operating_area_near(self, start: BaseGeometry) -> str:
        areas = self.operating_areas or self._gate
        dist = shapely.distance(self._op_geoms, start)
        return areas[int(np.argmin(dist))].id

    # --- paths ------------------------------------------------------------------------------------------

    def paths_clear(self, paths: Sequence[Sequence[tuple[float, float]]]) -> np.ndarray:
        """For each lon/lat polyline: True when every leg is clear (one point: when the point is allowed)."""
        lengths = np.array([len(p) for p in paths], dtype=np.intp)
        if (lengths == 0).any():
            raise ValueError(f"paths_clear: path #{int(np.argmin(lengths))} has no points")
        if not len(paths):
            return np.zeros(0, dtype=bool)
        pts = np.concatenate([np.asarray(p, dtype=float).reshape(-1, 2) for p in paths])
        x, y = self.frame.to_local(pts[:, 0], pts[:, 1])
        ends = np.cumsum(lengths)
        # Leg k joins point k to k+1 unless k is the last point of its path; single points become
        # zero-length legs, which segments_clear_xy checks as points.
        last = ends - 1
        legs_from = np.setdiff1d(np.arange(len(pts)), last)
        singles = last[lengths == 1]
        a = np.concatenate([legs_from, singles])
        b = np.concatenate([legs_from + 1, singles])
        owner = np.searchsorted(ends, a, side="right")
        ok = self.segments_clear_xy(x[a], y[a], x[b], y[b])
        result = np.ones(len(paths), dtype=bool)
        np.logical_and.at(result, owner, ok)
        return result
