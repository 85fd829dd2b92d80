"""The station owner's figures for one simulated day: who delivered, how fast, how safely, at what cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench import day_world as w
from bench.day_flight import SafetyCheck, below_reserve, lower_bound_s
from bench.day_sim import DayResult
from controller.station import StationConfig
from geofences import geodesic_distance_m
from vehicles.spec import VehicleKind

VAN_KWH_PER_KM = 0.35  # an electric panel van (e.g. Rivian EDV class), for the energy column only


@dataclass(frozen=True)
class Kpis:
    """One decider's day in numbers (times in minutes, energy in kWh)."""

    decider: str
    n: int
    share: dict[str, float]  # drone, robot, van, carried_over
    median_min: float
    p95_min: float
    on_time: float  # of the orders with a deadline, delivered by it
    van_km: float
    van_stops: int
    van_routes: int
    van_km_per_package: float  # van km over the packages the vans delivered
    van_reach_km: float  # mean straight-line km from the station to a van-delivered package
    drone_kwh: float
    robot_kwh: float
    van_kwh: float
    zone_entries: int
    below_reserve: int
    bound_ratio_median: float
    bound_ratio_p95: float
    pred_err_mean: float  # (predicted - measured) / measured, drones, %
    pred_err_worst: float  # the most optimistic flight (lowest error), %
    pred_below_share: float  # flights where the prediction was below the measurement
    flights: int
    pred_below_in_hold: int  # of the flights predicted below their measurement: those out when the hold began
    mode_median_min: dict[str, float]  # per mode that delivered, order to door
    plan_s: float
    van_s: float


def compute(result: DayResult, fleet: w.Fleet, config: StationConfig, safety: SafetyCheck) -> Kpis:
    """Figures from a finished day."""
    orders = result.orders
    out = result.outcomes
    n = len(orders)
    share = {
        m: sum(1 for o in out.values() if o.mode == m) / n for m in ("drone", "robot", "van", "carried_over")
    }
    done = [o for o in orders if out[o.id].delivered_s is not None]
    # Over *all* orders, a carried-over one counting as later than any delivery: a decider must not look
    # faster by leaving its slowest orders for tomorrow.
    minutes = np.array([result.minutes(o) for o in orders])
    due = [o for o in orders if o.deadline_s is not None]
    on_time = sum(1 for o in due if o.t_s + 60.0 * result.minutes(o) <= (o.deadline_s or 0.0))
    lon = np.array([o.lon for o in done])
    lat = np.array([o.lat for o in done])
    dist = geodesic_distance_m(np.full(len(done), config.lon), np.full(len(done), config.lat), lon, lat)
    specs = {str(v.kind): v.spec for v in fleet.vehicles()}
    bound = np.array(
        [
            lower_bound_s(out[o.id].mode, float(d), specs.get(out[o.id].mode), fleet.van_speed_mps)
            for o, d in zip(done, dist, strict=True)
        ]
    )
    by_van = np.array([out[o.id].mode == "van" for o in done], dtype=bool)
    delivered_min = minutes[np.isfinite(minutes)]
    ratio = delivered_min * 60.0 / np.maximum(bound, 1.0)
    drones = [t for t in result.trips if t.kind is VehicleKind.DRONE]
    err = np.array([(t.predicted_wh - t.measured_wh) / t.measured_wh * 100.0 for t in drones])
    return Kpis(
        decider=result.decider,
        n=n,
        share=share,
        median_min=float(np.percentile(minutes, 50, method="inverted_cdf")),
        p95_min=float(np.percentile(minutes, 95, method="inverted_cdf")),
        on_time=on_time / len(due) if due else float("nan"),
        van_km=result.van_km,
        van_stops=result.van_stops,
        van_routes=result.van_routes,
        van_km_per_package=result.van_km / result.van_stops if result.van_stops else float("nan"),
        van_reach_km=float(np.mean(dist[by_van])) / 1000.0 if by_van.any() else float("nan"),
        drone_kwh=sum(t.measured_wh for t in drones) / 1000.0,
        robot_kwh=sum(t.measured_wh for t in result.trips if t.kind is VehicleKind.ROBOT) / 1000.0,
        van_kwh=result.van_km * VAN_KWH_PER_KM,
        zone_entries=safety.zone_entries(result.trips),
        below_reserve=below_reserve(result.trips),
        bound_ratio_median=float(np.median(ratio)) if len(ratio) else float("nan"),
        bound_ratio_p95=float(np.percentile(ratio, 95)) if len(ratio) else float("nan"),
        pred_err_mean=float(err.mean()) if len(err) else float("nan"),
        pred_err_worst=float(err.min()) if len(err) else float("nan"),
        pred_below_share=float((err < 0).mean()) if len(err) else float("nan"),
        flights=len(drones),
        pred_below_in_hold=sum(
            1 for t in drones if t.predicted_wh < t.measured_wh and t.launch_s < w.HOLD[0] < t.back_s
        ),
        mode_median_min={
            m: float(np.median([result.minutes(o) for o in done if out[o.id].mode == m]))
            for m in ("drone", "robot", "van")
            if any(out[o.id].mode == m for o in done)
        },
        plan_s=result.plan_s,
        van_s=result.van_s,
    )
