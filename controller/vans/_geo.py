"""Road distances between stops, estimated from coordinates: great-circle distance x a circuity factor.

Vans drive on roads, so the straight line underestimates; a routing engine (OSRM, Valhalla) would be
exact but is one more service to run. Circuity (network distance / straight-line distance) of US
metropolitan road networks is documented by Giacomin & Levinson (2015), "Road network circuity in
metropolitan areas", Environment and Planning B 42(6):1040-1053 (doi:10.1068/b130131p); driving
distance is typically about 1.3 times the crow-fly distance (Wang, Bette, Schreckenberg & Guhr 2024,
"How much longer do you have to drive than the crow has to fly?", arXiv:2406.06490). We use 1.3.

The haversine on a sphere (mean Earth radius) is within about 0.5 % of the ellipsoidal distance,
far inside the uncertainty of the circuity factor, and is a handful of numpy operations for n x n.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CIRCUITY = 1.3
EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius


def great_circle_matrix(lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """All-pairs great-circle distances in metres (haversine), as an n x n float array."""
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    dphi = phi[:, None] - phi[None, :]
    dlam = lam[:, None] - lam[None, :]
    a = np.sin(dphi / 2) ** 2 + np.cos(phi)[:, None] * np.cos(phi)[None, :] * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def road_distance_matrix(
    lat: npt.ArrayLike, lon: npt.ArrayLike, circuity: float = CIRCUITY
) -> npt.NDArray[np.float64]:
    """Estimated road distances in metres: great-circle distance x `circuity` (symmetric, zero diagonal)."""
    return great_circle_matrix(lat, lon) * circuity
