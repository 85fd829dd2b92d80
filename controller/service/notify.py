"""What a customer is told about a package: its public view, and the bodies of the state/ETA webhooks.

The public view (`public_view`) is all the tracking page (`/track/{token}`) and the notifications webhook
show: the state in plain words, the ETA in UTC and in the station's zone, how it travels (drone, robot,
van), where it goes and the station's position (for the pin). Never a vehicle id, a reason code, a note or
another package: the tracking token is public, in a text message, so what it opens must be harmless.

`Notifier` decides which events a messaging service hears about: a change of the public state (received,
assigned, en route with its ETA, delivered, van, failed, cancelled; "launching" is still "assigned" to a
customer, and a re-plan back to the shelf is not news), or an ETA that moved by more than
`[notifications] eta_change_s`. It remembers what it last told per package; after a restart it rebuilds that
from the package's stored history, so a resumed webhook neither repeats nor skips a change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from controller.packages import TERMINAL_STATES, Package, PackageEvent, PackageState

__all__ = [
    "PUBLIC_STATES",
    "Notifier",
    "dispatcher_render",
    "public_state",
    "public_view",
    "status_body",
    "tracking_url",
]

S = PackageState
# The states a customer sees, and their words.
PUBLIC_STATES: dict[str, str] = {
    "received": "Received at the delivery station",
    "assigned": "Being prepared for delivery",
    "en_route": "On its way",
    "delivered": "Delivered",
    "van": "Going out with a delivery van",
    "failed": "A delivery attempt did not work out; another is being arranged",
    "cancelled": "Cancelled",
}
_PUBLIC: dict[PackageState, str] = {
    S.RECEIVED: "received",
    S.ASSIGNED: "assigned",
    S.LAUNCHING: "assigned",
    S.EN_ROUTE: "en_route",
    S.DELIVERED: "delivered",
    S.VAN: "van",
    S.FAILED: "failed",
    S.CANCELLED: "cancelled",
}


def public_state(state: PackageState) -> str:
    """The customer's name for a package state."""
    return _PUBLIC[state]


def tracking_url(base: str, token: str | None) -> str | None:
    """The package's tracking link: `base` (`[notifications] public_url`, or "" for a path) + `/track/...`."""
    return None if token is None else f"{base}/track/{token}"


def _local(at: datetime | None, zone: ZoneInfo) -> str | None:
    return None if at is None else at.astimezone(zone).isoformat(timespec="minutes")


def public_view(
    package: Package,
    *,
    station: tuple[float, float],
    zone: str,
    state: PackageState | None = None,
    eta: datetime | None = None,
    use_package_eta: bool = True,
) -> dict[str, Any]:
    """The package as its customer may see it (see the module docstring); `state`/`eta` as of an event."""
    tz = ZoneInfo(zone)
    shown = public_state(state or package.state)
    when = package.eta if use_package_eta and eta is None else eta
    if shown in ("delivered", "van", "cancelled", "failed"):
        when = None  # no promise to show: done, or in someone else's hands
    return {
        "state": shown,
        "state_text": PUBLIC_STATES[shown],
        "by": package.mode if package.mode in ("drone", "robot", "van") else None,
        "eta": when,
        "eta_local": _local(when, tz),
        "time_zone": zone,
        "updated_at": package.updated_at,
        "destination": {"lat": round(package.dest_lat, 5), "lon": round(package.dest_lon, 5)},
        "station": {"lat": round(station[0], 5), "lon": round(station[1], 5)},
    }


def status_body(
    event: PackageEvent,
    package: Package,
    *,
    kind: str,
    station_name: str,
    station: tuple[float, float],
    zone: str,
    base: str,
    previous: tuple[str, datetime | None] | None = None,
) -> dict[str, Any]:
    """The JSON a state or ETA change is POSTed as (`kind`: "state" or "eta")."""
    view = public_view(package, station=station, zone=zone, state=event.to_state, eta=event.eta)
    view.pop("station")
    return {
        "type": f"package.{kind}",
        "event_id": event.id,
        "at": event.at,
        "station": station_name,
        "package": {
            "id": package.id,
            "key": package.key,
            "recipient": package.recipient,
            "tracking_url": tracking_url(base, package.tracking_token),
            **view,
        },
        "previous": None if previous is None else {"state": previous[0], "eta": previous[1]},
    }


class Notifier:
    """The notifications webhook's `render`: a body for the events a customer should hear about, else None.

    `history(package_id)` gives a package's stored events (for rebuilding what was told before a restart).
    Called from a worker thread (the webhook runs `render` off the event loop), one event at a time.
    """

    def __init__(
        self,
        *,
        station_name: str,
        station: tuple[float, float],
        zone: str,
        base: str,
        eta_change_s: float,
        history: Callable[[str], Sequence[PackageEvent]],
    ) -> None:
        self.station_name = station_name
        self.station = station
        self.zone = zone
        self.base = base
        self.eta_change_s = eta_change_s
        self.history = history
        self._told: dict[str, tuple[str, datetime | None]] = {}

    def __call__(self, event: PackageEvent, package: Package) -> dict[str, Any] | None:
        told = self._told.get(event.package_id)
        if told is None:
            told = self._rebuild(event)
        kind, now = self._judge(event, told)
        if now is not None:
            self._told[event.package_id] = now
        if event.to_state in TERMINAL_STATES:
            self._told.pop(event.package_id, None)
        if kind is None:
            return None
        return status_body(
            event,
            package,
            kind=kind,
            station_name=self.station_name,
            station=self.station,
            zone=self.zone,
            base=self.base,
            previous=None if told == ("", None) else told,
        )

    def _judge(
        self, event: PackageEvent, told: tuple[str, datetime | None]
    ) -> tuple[str | None, tuple[str, datetime | None] | None]:
        """(what to tell: "state", "eta" or None; what is told after this event)."""
        state, eta = told
        if event.to_state is S.RECEIVED and event.from_state is not None:
            return None, None  # a re-plan: the customer was told "received" or "assigned", still true enough
        shown = public_state(event.to_state)
        if shown != state:
            return "state", (shown, event.eta)
        if event.eta is None:
            return None, None
        if eta is None or abs((event.eta - eta).total_seconds()) > self.eta_change_s:
            return "eta", (shown, event.eta)
        return None, None

    def _rebuild(self, event: PackageEvent) -> tuple[str, datetime | None]:
        """What the customer was told before `event`, from the stored history ("" for nothing yet)."""
        told: tuple[str, datetime | None] = ("", None)
        if event.from_state is None:
            return told
        for earlier in self.history(event.package_id):
            if earlier.id >= event.id:
                break
            _, now = self._judge(earlier, told)
            if now is not None:
                told = now
        return told


def dispatcher_render(
    handover: Callable[[PackageEvent, Package], dict[str, Any]],
    *,
    events: str,
    station_name: str,
    station: tuple[float, float],
    zone: str,
    base: str,
) -> Callable[[PackageEvent, Package], dict[str, Any] | None]:
    """The dispatcher's webhook `render`: van hand-overs as the feed lists them; with `events == "all"`,
    every other stored state change too, as a `package.state` body with the stored states and reason."""

    def render(event: PackageEvent, package: Package) -> dict[str, Any] | None:
        if event.to_state is S.VAN:
            return handover(event, package)
        if events != "all":
            return None
        body = status_body(
            event, package, kind="state", station_name=station_name, station=station, zone=zone, base=base
        )
        body["from_state"] = None if event.from_state is None else event.from_state.value
        body["to_state"] = event.to_state.value
        body["reason"] = event.reason
        return body

    return render


def kind_of(event: PackageEvent) -> str:
    """`X-Lastmile-Kind` of the dispatcher's webhook: what a body is, without parsing it."""
    return "van_handover" if event.to_state is S.VAN else "state"
