"""Layers by heading sector, and the closed intersection test of volumes."""

from __future__ import annotations

import itertools

import pytest
import shapely

from controller.airspace import LayerPlan, Margins, Volume
from controller.errors import InputError


def vol(x: float = 0.0, lo: float = 0.0, hi: float = 20.0, t0: float = 0.0, t1: float = 10.0) -> Volume:
    return Volume(
        flight_id="f",
        vehicle_id="d",
        kind="cruise",
        shape=shapely.box(x, 0.0, x + 10.0, 10.0),
        alt_lo_m=lo,
        alt_hi_m=hi,
        t0_s=t0,
        t1_s=t1,
    )


def test_opposite_headings_never_share_a_layer() -> None:
    plan = LayerPlan()
    for heading in range(0, 360, 5):
        mine, theirs = set(plan.for_heading(heading)), set(plan.for_heading(heading + 180))
        assert mine and theirs and not mine & theirs
    assert plan.for_heading(90) == (40.0, 90.0)
    assert plan.for_heading(270) == (65.0, 115.0)
    assert plan.choices(90, 270)[0] == (40.0, 65.0)


def test_four_sectors_keep_opposites_apart() -> None:
    plan = LayerPlan(altitudes_m=(30, 55, 80, 105), sectors=4)
    assert plan.for_heading(45) == (30,) and plan.for_heading(225) == (80,)
    assert plan.for_heading(135) == (55,) and plan.for_heading(315) == (105,)


def test_layer_bands_never_overlap() -> None:
    plan, m = LayerPlan(), Margins()
    alts = plan.altitudes_m
    for a, b in itertools.pairwise(alts):
        assert a + m.vertical_buffer_m < b - m.vertical_buffer_m


def test_layers_respect_ceiling_and_vehicle_limit() -> None:
    assert LayerPlan(ceiling_m=100.0).for_heading(270) == (65.0,)
    assert LayerPlan(vehicle_max_alt_m=95.0).for_heading(90) == (40.0, 90.0)
    assert LayerPlan(vehicle_max_alt_m=92.0).for_heading(90) == (40.0,)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"ceiling_m": 60.0}, "altitudes_m", "fits under 57.5 m"),
        ({"altitudes_m": (40.0, 55.0)}, "altitudes_m", "bands overlap"),
        ({"altitudes_m": (8.0, 40.0)}, "altitudes_m", "pad transition"),
        ({"sectors": 3}, "sectors", "even"),
    ],
)
def test_bad_layer_plans_name_the_field(kwargs: dict, field: str, words: str) -> None:
    with pytest.raises(InputError, match=words) as err:
        LayerPlan(**kwargs)
    assert err.value.field == field


def test_touching_counts_as_intersecting() -> None:
    a = vol()
    assert a.intersects(vol(x=10.0))  # shapes share an edge
    assert a.intersects(vol(lo=20.0, hi=30.0))  # bands share 20 m
    assert a.intersects(vol(t0=10.0, t1=20.0))  # windows share t = 10 s
    assert not a.intersects(vol(x=10.001))
    assert not a.intersects(vol(lo=20.001, hi=30.0))
    assert not a.intersects(vol(t0=10.001, t1=20.0))
    assert a.contains(5.0, 5.0, 20.0, 10.0) and not a.contains(5.0, 5.0, 20.1, 5.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"kind": "loiter"}, "kind"), ({"alt_lo_m": 30.0}, "alt_lo_m"), ({"t0_s": 11.0}, "t0_s")],
)
def test_bad_volumes_name_the_field(kwargs: dict, field: str) -> None:
    args = {
        "flight_id": "f",
        "vehicle_id": "d",
        "kind": "cruise",
        "shape": shapely.box(0, 0, 1, 1),
        "alt_lo_m": 0.0,
        "alt_hi_m": 20.0,
        "t0_s": 0.0,
        "t1_s": 10.0,
    }
    with pytest.raises(InputError) as err:
        Volume(**{**args, **kwargs})
    assert err.value.field == field
