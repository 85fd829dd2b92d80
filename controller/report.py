"""End-of-day figures from the store's event log: what an operations lead reads at the end of a shift.

A day is a UTC calendar day. Everything comes from stored transitions (never from memory), so a report
for yesterday is the same after a restart:
- every package received, accounted for once by where it stood at the end (delivered, handed to a van,
  cancelled, failed and not yet planned again, or still out: received, assigned, launching, en route);
- delivered by mode (drone, robot), the share on time (among packages with a deadline), and the median
  time from intake to the door;
- hand-overs to vans, by their main reason code (the first, most fundamental one);
- energy used by vehicles (as measured on delivered and failed trips);
- failures by reason code;
- proof of delivery: how many deliveries have one (and how it was confirmed: the vehicle's own report, or
  inferred after the report went unheard), and in the JSON form each delivered package with its proof.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rich.table import Table

from controller.packages import Package, PackageEvent, PackageState
from controller.store import Store

__all__ = ["day_report", "period_report", "report_table"]

_PAGE = 10_000


def _events(store: Store, start: datetime, end: datetime) -> list[PackageEvent]:
    """Every stored transition in [start, end), in commit order (one pass over the log)."""
    out: list[PackageEvent] = []
    cursor = 0
    while True:
        events, cursor = store.events_since(cursor, limit=_PAGE)
        out.extend(e for e in events if start <= e.at < end)
        if len(events) < _PAGE:
            return out


# Where a package received in the period stood at its end: every one is counted once, in one of these.
_OUTCOMES = {
    PackageState.DELIVERED: "delivered",
    PackageState.VAN: "van",
    PackageState.CANCELLED: "cancelled",
    PackageState.FAILED: "failed",  # its trip failed and it was not planned again yet
}
_STILL_OUT = "still_out"  # received, assigned, launching or en route when the period ended


def _accounting(received: list[PackageEvent], events: list[PackageEvent]) -> dict[str, Any]:
    """Every package received in the period, by where it stood at the period's end (its last transition
    in the period): received = delivered + van + cancelled + failed + still out."""
    last: dict[str, PackageState] = {e.package_id: e.to_state for e in received}
    for e in events:  # commit order: the last one wins
        if e.package_id in last:
            last[e.package_id] = e.to_state
    counts: Counter[str] = Counter(_OUTCOMES.get(state, _STILL_OUT) for state in last.values())
    out_by_state: Counter[str] = Counter(state.value for state in last.values() if state not in _OUTCOMES)
    return {
        "received": len(last),
        **{name: counts[name] for name in (*_OUTCOMES.values(), _STILL_OUT)},
        "still_out_by_state": dict(sorted(out_by_state.items())),
    }


def _energy(event: PackageEvent) -> float:
    value = event.detail.get("energy_used_wh")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def day_report(store: Store, day: date) -> dict[str, Any]:
    """The figures for one UTC day (see the module docstring)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return {"day": day.isoformat(), **period_report(store, start, start + timedelta(days=1))}


def period_report(
    store: Store, start: datetime, end: datetime, *, time_scale: float = 1.0, epoch: datetime | None = None
) -> dict[str, Any]:
    """The figures for events in [start, end).

    The store stamps events with the wall clock. A simulated station (the demo) runs its day `time_scale`
    times faster from `epoch`; its durations and deadlines are then judged in that simulated time.
    """

    def simulated(t: datetime) -> datetime:
        return t if epoch is None else epoch + (t - epoch) * time_scale

    events = _events(store, start, end)
    received = [e for e in events if e.to_state is PackageState.RECEIVED and e.from_state is None]
    delivered = [e for e in events if e.to_state is PackageState.DELIVERED]
    vans = [e for e in events if e.to_state is PackageState.VAN]
    failed = [e for e in events if e.to_state is PackageState.FAILED]
    packages: dict[str, Package] = {}
    for e in [*delivered, *vans]:
        if e.package_id not in packages:
            packages[e.package_id] = store.get(e.package_id)

    by_mode: Counter[str] = Counter()
    minutes: list[float] = []
    with_deadline = on_time = 0
    for e in delivered:
        p = packages[e.package_id]
        by_mode[p.mode or "unknown"] += 1
        minutes.append((simulated(e.at) - simulated(p.created_at)).total_seconds() / 60.0)
        if p.deadline is not None:
            with_deadline += 1
            on_time += simulated(e.at) <= p.deadline
    van_reasons: Counter[str] = Counter((packages[e.package_id].reasons or ["unspecified"])[0] for e in vans)
    failures: Counter[str] = Counter(str(e.detail.get("reason_code") or "unspecified") for e in failed)
    energy = sum(_energy(e) for e in [*delivered, *failed])
    proofs = store.proofs_of([e.package_id for e in delivered])
    confirmed: Counter[str] = Counter(str(p["confirmed_by"]) for p in proofs.values())
    return {
        "received": len(received),
        "accounting": _accounting(received, events),
        "delivered": {"total": len(delivered), "by_mode": dict(sorted(by_mode.items()))},
        "on_time": {
            "with_deadline": with_deadline,
            "on_time": on_time,
            "share": round(on_time / with_deadline, 4) if with_deadline else None,
        },
        "delivery_minutes": {
            "median": round(statistics.median(minutes), 1) if minutes else None,
            "p90": round(statistics.quantiles(minutes, n=10)[-1], 1) if len(minutes) >= 2 else None,
        },
        "van_fallbacks": {"total": len(vans), "by_reason": dict(van_reasons.most_common())},
        "energy_used_wh": round(energy, 1),
        "failures": {"total": len(failed), "by_reason": dict(failures.most_common())},
        "proof_of_delivery": {
            "with_proof": len(proofs),
            "without_proof": len(delivered) - len(proofs),
            "by_confirmation": dict(sorted(confirmed.items())),
            "with_photo": sum(1 for p in proofs.values() if p.get("photo_url")),
        },
        "deliveries": [_delivery(e, packages[e.package_id], proofs.get(e.package_id)) for e in delivered],
    }


def _delivery(event: PackageEvent, package: Package, proof: dict[str, Any] | None) -> dict[str, Any]:
    """One delivered package in the report's JSON form, with its proof (None: delivered without one)."""
    if proof is not None:
        proof = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in proof.items()}
    return {
        "package_id": package.id, "key": package.key, "mode": package.mode, "vehicle_id": package.vehicle_id,
        "delivered_at": event.at.isoformat(), "proof": proof,
    }  # fmt: skip


def report_table(data: dict[str, Any], title: str) -> Table:
    """The figures as a table for the console (`lastmile report`, the end of `lastmile demo`)."""
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    delivered, on_time = data["delivered"], data["on_time"]
    table.add_row("received", str(data["received"]))
    accounting = data.get("accounting")
    if accounting is not None:  # every package received, once: where it stood when the period ended
        for name, label in _ACCOUNT_ROWS:
            if accounting[name] or name in ("delivered", "van", _STILL_OUT):
                table.add_row(f"  {label}", str(accounting[name]))
        for state, n in accounting["still_out_by_state"].items():
            table.add_row(f"    {_NOT_FINISHED.get(state, state.replace('_', ' '))}", str(n))
    table.add_row("delivered", str(delivered["total"]))
    for mode, n in delivered["by_mode"].items():
        table.add_row(f"  by {mode}", str(n))
    share = on_time["share"]
    table.add_row(
        "on time",
        "-" if share is None else f"{share * 100:.1f} % of {on_time['with_deadline']} with deadline",
    )
    table.add_row("median delivery time", _minutes(data["delivery_minutes"]["median"]))
    table.add_row("van fallbacks", str(data["van_fallbacks"]["total"]))
    for reason, n in data["van_fallbacks"]["by_reason"].items():
        table.add_row(f"  {reason}", str(n))
    proof = data.get("proof_of_delivery")
    if proof is not None:
        table.add_row("with proof of delivery", f"{proof['with_proof']} of {delivered['total']}")
        for how, n in proof["by_confirmation"].items():
            table.add_row(f"  confirmed by {'the vehicle' if how == 'vehicle' else 'inference'}", str(n))
    table.add_row("energy used", f"{data['energy_used_wh']:.1f} Wh")
    table.add_row("failures", str(data["failures"]["total"]))
    for reason, n in data["failures"]["by_reason"].items():
        table.add_row(f"  {reason}", str(n))
    return table


_ACCOUNT_ROWS = (
    ("delivered", "of which delivered"),
    ("van", "handed to a van"),
    ("cancelled", "cancelled"),
    ("failed", "failed, not yet planned again"),
    (_STILL_OUT, "not finished yet"),
)


_NOT_FINISHED = {
    "received": "waiting at the station",
    "assigned": "assigned, not launched",
    "launching": "launching",
    "en_route": "en route",
}


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} min"
