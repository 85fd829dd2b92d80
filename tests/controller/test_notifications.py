"""The webhooks (`EventWebhook`): notifications to a messaging service and the dispatcher's feed, against a
real local HTTP receiver that checks signatures, on a real store (SQLite and PostgreSQL).

Events are made by moving packages through the store, as the controller does; the webhook task runs as
the controller runs it. What a receiver would notice: which bodies arrive, in what order, signed or not,
once each, and that nothing handed over while no controller ran is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.errors import InputError
from controller.packages import PackageIn
from controller.packages import PackageState as S
from controller.service.events import EventBus
from controller.service.notify import Notifier, dispatcher_render, kind_of
from controller.service.webhook import EventWebhook
from controller.station import NotificationsConfig, load_station
from controller.store import Store
from controller.store.lease import Lease, LeaseLost

KEY = b"notify-secret"
STATION = (33.44, -112.256)
T0 = datetime(2026, 12, 8, 17, 0, tzinfo=UTC)


class Receiver:
    """Answers 500 to the first `fail` POSTs, then 200; keeps (event id, kind, body) of what it accepted.

    A POST whose signature does not match the body under `KEY` is answered 401 and counted in `forged`.
    """

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.attempts = 0
        self.forged = 0
        self.accepted: list[tuple[int, str | None, dict[str, Any]]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(KEY, raw, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(self.headers.get("X-Lastmile-Signature", ""), expected)
                with receiver.changed:
                    receiver.attempts += 1
                    if not signed:
                        receiver.forged += 1
                        status = 401
                    elif receiver.attempts <= receiver.fail:
                        status = 500
                    else:
                        status = 200
                        event = int(self.headers["X-Lastmile-Event"])
                        kind = self.headers.get("X-Lastmile-Kind")
                        receiver.accepted.append((event, kind, json.loads(raw)))
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10) -> None:
        def wait() -> bool:
            with self.changed:
                return self.changed.wait_for(predicate, within)

        assert await asyncio.to_thread(wait), f"not delivered in time; got {self.summary()}"

    def unique(self) -> list[tuple[int, str | None, dict[str, Any]]]:
        """What a receiver that drops repeated `X-Lastmile-Event` ids keeps (at-least-once across stops)."""
        seen: set[int] = set()
        out = []
        for item in self.accepted:
            if item[0] not in seen:
                seen.add(item[0])
                out.append(item)
        return out

    def summary(self) -> list[tuple[str, str]]:
        return [(b["type"], b["package"]["state"]) for _, _, b in self.accepted]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    yield r
    r.close()


def notifier(store: Store, eta_change_s: float = 300.0) -> Notifier:
    return Notifier(
        station_name="test",
        station=STATION,
        zone="America/Phoenix",
        base="https://track.example",
        eta_change_s=eta_change_s,
        history=store.history,
    )


def hook(store: Store, bus: EventBus, url: str, render: Any, **kw: Any) -> EventWebhook:
    kw.setdefault("name", "notifications")
    return EventWebhook(
        store, bus, url, render=render, station="test", key=KEY, backoff_s=0.01, poll_s=0.1, **kw
    )


@contextlib.asynccontextmanager
async def running(webhook: EventWebhook) -> AsyncIterator[EventWebhook]:
    await webhook.start()
    task = asyncio.create_task(webhook.run())
    try:
        yield webhook
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def submit(store: Store, key: str) -> str:
    pkg, _ = store.submit(
        PackageIn(key=key, weight=1.0, dest_lat=33.45, dest_lon=-112.25, recipient="A. Customer")
    )
    return pkg.id


def fly(store: Store, pid: str, eta: datetime) -> None:
    store.transition(pid, S.ASSIGNED, reason="assigned", vehicle_id="d1", mode="drone", eta=eta)
    store.transition(pid, S.LAUNCHING, reason="launching")
    store.transition(pid, S.EN_ROUTE, reason="took off")


async def test_customers_hear_each_state_and_big_eta_changes_once_signed_in_order(
    store: Store, receiver: Receiver
) -> None:
    bus = EventBus()
    async with running(hook(store, bus, receiver.url, notifier(store))):
        pid = submit(store, "n-1")
        store.transition(pid, S.ASSIGNED, reason="assigned", vehicle_id="d1", mode="drone", eta=T0)
        store.transition(pid, S.RECEIVED, reason="re-plan")  # back on the shelf: not news
        # Assigned again, 60 s later than told: below the 300 s threshold, so not told again.
        store.transition(
            pid, S.ASSIGNED, reason="assigned", vehicle_id="d2", mode="drone", eta=T0 + timedelta(seconds=60)
        )
        # Then 15 min later than told: told, as an ETA change.
        store.transition(pid, S.RECEIVED, reason="re-plan")
        late = T0 + timedelta(minutes=15)
        store.transition(pid, S.ASSIGNED, reason="assigned", vehicle_id="d1", mode="drone", eta=late)
        store.transition(pid, S.LAUNCHING, reason="launching")  # still "assigned" to a customer
        store.transition(pid, S.EN_ROUTE, reason="took off")
        store.transition(pid, S.DELIVERED, reason="delivered")
        other = submit(store, "n-2")
        store.transition(other, S.VAN, reason="no_vehicle_available", reasons=["no_vehicle_available"])
        await receiver.wait_for(lambda: len(receiver.accepted) >= 7)
        await asyncio.sleep(0.3)  # a few more polls: nothing else may come
    assert receiver.summary() == [
        ("package.state", "received"),
        ("package.state", "assigned"),
        ("package.eta", "assigned"),
        ("package.state", "en_route"),
        ("package.state", "delivered"),
        ("package.state", "received"),
        ("package.state", "van"),
    ]
    assert receiver.forged == 0 and receiver.attempts == 7 + 2  # two 500s, retried, then each once
    ids = [event for event, _, _ in receiver.accepted]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    bodies = [b for _, _, b in receiver.accepted]
    assert all(b["event_id"] == event for event, _, b in receiver.accepted)
    eta_change = bodies[2]
    assert eta_change["package"]["eta"] == "2026-12-08T17:15:00Z"
    assert eta_change["package"]["eta_local"] == "2026-12-08T10:15-07:00"  # Phoenix, named in time_zone
    assert eta_change["package"]["time_zone"] == "America/Phoenix"
    assert eta_change["previous"] == {"state": "assigned", "eta": "2026-12-08T17:00:00Z"}
    en_route = bodies[3]["package"]
    assert en_route["eta"] == "2026-12-08T17:15:00Z" and en_route["by"] == "drone"
    token = store.get(pid).tracking_token
    assert en_route["tracking_url"] == f"https://track.example/track/{token}"
    assert en_route["key"] == "n-1" and en_route["recipient"] == "A. Customer"
    assert not {"vehicle_id", "reasons", "reason", "note"} & set(en_route)  # no operator data


async def test_a_body_signed_with_another_key_is_refused_and_kept_until_a_restart_with_the_right_key(
    store: Store, receiver: Receiver
) -> None:
    """The receiver's check is real: a wrong key is refused (401) and the webhook keeps the event, so the
    controller restarted with the right key delivers it (same event id), not the next one."""
    receiver.fail = 0
    bus = EventBus()
    wrong = hook(store, bus, receiver.url, notifier(store), max_backoff_s=0.05)
    wrong.key = b"not-the-key"
    async with running(wrong):
        pid = submit(store, "forged")
        await receiver.wait_for(lambda: receiver.forged >= 2)
    assert receiver.accepted == []
    async with running(hook(store, bus, receiver.url, notifier(store))):
        await receiver.wait_for(lambda: len(receiver.accepted) == 1)
    [(event, _, body)] = receiver.accepted
    assert event == store.history(pid)[0].id and body["package"]["state"] == "received"


async def test_handovers_while_no_controller_runs_are_pushed_after_the_restart(
    store: Store, receiver: Receiver
) -> None:
    receiver.fail = 0
    bus = EventBus()
    render = dispatcher_render(
        lambda e, p: {"event_id": e.id, "package": {"key": p.key, "state": "van"}, "type": "package.state"},
        events="van",
        station_name="test",
        station=STATION,
        zone="UTC",
        base="",
    )

    def dispatcher() -> EventWebhook:
        return hook(store, bus, receiver.url, render, name="dispatcher", to_state=S.VAN, kind=kind_of)

    async with running(dispatcher()):
        store.transition(submit(store, "before"), S.VAN, reason="no_vehicle_available")
        await receiver.wait_for(lambda: len(receiver.accepted) == 1)
    # No controller: packages keep going to the vans (another process, an operator's CLI).
    gap = [submit(store, f"gap-{i}") for i in range(3)]
    for pid in gap:
        store.transition(pid, S.VAN, reason="no_vehicle_available")
    async with running(dispatcher()) as again:
        await receiver.wait_for(lambda: len(receiver.unique()) == 4)
        store.transition(submit(store, "after"), S.VAN, reason="no_vehicle_available")
        await receiver.wait_for(lambda: len(receiver.unique()) == 5)
        last = receiver.accepted[-1][0]
        async with asyncio.timeout(10):  # saved once the answer is in: a restart does not resend it
            while (store.webhook_cursor("test", "dispatcher", receiver.url) or 0) < last:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    keys = [b["package"]["key"] for _, _, b in receiver.unique()]
    assert keys == ["before", "gap-0", "gap-1", "gap-2", "after"]  # none lost, in order
    # Only the POST in flight when the first controller stopped may come twice (same event id).
    assert len(receiver.accepted) - len(receiver.unique()) <= 1
    assert [e for e, _, _ in receiver.accepted] == sorted(e for e, _, _ in receiver.accepted)
    assert {kind for _, kind, _ in receiver.accepted} == {"van_handover"}
    assert last <= (store.webhook_cursor("test", "dispatcher", receiver.url) or 0) <= again.cursor
    # Another URL is another receiver: it starts at the log's end, not with the old one's history.
    assert store.webhook_cursor("test", "dispatcher", receiver.url + "/other") is None


async def test_dispatcher_hears_every_state_change_when_asked(store: Store, receiver: Receiver) -> None:
    receiver.fail = 0
    bus = EventBus()
    render = dispatcher_render(
        lambda e, p: {"event_id": e.id, "handover": p.key},
        events="all",
        station_name="test",
        station=STATION,
        zone="UTC",
        base="",
    )
    async with running(hook(store, bus, receiver.url, render, name="dispatcher", kind=kind_of)):
        pid = submit(store, "all-1")
        fly(store, pid, T0)
        store.transition(pid, S.FAILED, reason="battery")
        store.transition(pid, S.VAN, reason="max_attempts")
        await receiver.wait_for(lambda: len(receiver.accepted) == 6)
    got = [(kind, b.get("to_state")) for _, kind, b in receiver.accepted]
    assert got == [
        ("state", "received"),
        ("state", "assigned"),
        ("state", "launching"),
        ("state", "en_route"),
        ("state", "failed"),
        ("van_handover", None),
    ]
    assert receiver.accepted[-1][2] == {"event_id": receiver.accepted[-1][0], "handover": "all-1"}
    assert receiver.accepted[4][2]["reason"] == "battery"


@pytest.mark.postgres
async def test_a_new_leader_resumes_the_cursor_and_the_old_one_cannot_move_it(
    postgres_url: str, receiver: Receiver
) -> None:
    """Leader A pushes, pauses (its lock session drops), B takes over: A's cursor writes are fenced off,
    and B pushes what A had not, from the stored cursor: at-least-once with stable event ids."""
    receiver.fail = 0
    bus = EventBus()
    store_a, store_b = Store(postgres_url), Store(postgres_url)
    lease_a, lease_b = Lease(postgres_url, "test", "A"), Lease(postgres_url, "test", "B")
    try:
        assert lease_a.try_acquire()
        store_a.fence = lease_a.check
        a = hook(store_a, bus, receiver.url, notifier(store_a), epoch=lambda: lease_a.epoch)
        async with running(a):
            submit(store_a, "pg-1")
            await receiver.wait_for(lambda: len(receiver.accepted) == 1)
        lease_a._drop_session()  # A pauses; its lock goes, its epoch stays as it was
        assert lease_b.try_acquire()
        store_b.fence = lease_b.check
        submit(store_b, "pg-2")  # B hands a package in before its webhook starts
        with pytest.raises(LeaseLost):
            store_a.save_webhook_cursor("test", "notifications", receiver.url, 10**6)
        b = hook(store_b, bus, receiver.url, notifier(store_b), epoch=lambda: lease_b.epoch)
        async with running(b):
            await receiver.wait_for(lambda: len(receiver.unique()) == 2)
            submit(store_b, "pg-3")
            await receiver.wait_for(lambda: len(receiver.unique()) == 3)
        keys = [body["package"]["key"] for _, _, body in receiver.unique()]
        assert keys == ["pg-1", "pg-2", "pg-3"]
        assert len(receiver.accepted) - len(receiver.unique()) <= 1  # pg-1 again, if A stopped mid-POST
    finally:
        lease_a.release()
        lease_b.release()
        store_a.close()
        store_b.close()


def test_a_station_with_both_webhooks_pushes_signed_and_resumes_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `lastmile serve`'s app: the station file's webhooks start with the API, sign with the keys it
    names, and a restarted controller pushes what was handed over while it was down."""
    from controller.api.server import ApiThread
    from tests.api.helpers import ROLE_TOKEN, package, station_config

    notify, dispatch = Receiver(), Receiver()
    monkeypatch.setenv("TEST_NOTIFY_KEY", KEY.decode())
    (tmp_path / "hook.key").write_text(KEY.decode() + "\n")
    config = station_config(webhook_url=dispatch.url, webhook_secret_file=tmp_path / "hook.key")
    config = config.model_copy(
        update={
            "notifications": NotificationsConfig(
                webhook_url=notify.url, secret_env="TEST_NOTIFY_KEY", public_url="https://t.example"
            )
        }
    )
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    try:
        with ApiThread(config, url) as api:
            with httpx.Client(
                base_url=api.url, headers={"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
            ) as op:
                op.post("/v1/packages", json=package("up-1"))  # no vehicle can fly: to the vans at once
            asyncio.run(notify.wait_for(lambda: len(notify.unique()) == 2))
            asyncio.run(dispatch.wait_for(lambda: len(dispatch.unique()) == 1))
        with Store(url) as store:  # the controller is down; another process hands a package over
            store.transition(submit(store, "down-1"), S.VAN, reason="operator")
        with ApiThread(config, url):
            asyncio.run(notify.wait_for(lambda: len(notify.unique()) == 4))
            asyncio.run(dispatch.wait_for(lambda: len(dispatch.unique()) == 2))
    finally:
        notify.close()
        dispatch.close()
    assert notify.forged == dispatch.forged == 0  # both signed with the keys the station file names
    assert [(b["package"]["key"], b["package"]["state"]) for _, _, b in notify.unique()] == [
        ("up-1", "received"),
        ("up-1", "van"),
        ("down-1", "received"),
        ("down-1", "van"),
    ]
    assert notify.unique()[0][2]["package"]["tracking_url"].startswith("https://t.example/track/")
    assert [b["package"]["key"] for _, _, b in dispatch.unique()] == ["up-1", "down-1"]
    assert {kind for _, kind, _ in dispatch.accepted} == {"van_handover"}


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"webhook_url": "https://m.example/hook"}, "needs secret_env or secret_file"),
        ({"webhook_url": "ftp://m.example/hook", "secret_env": "HOME"}, "http:// or https://"),
        ({"secret_env": "LASTMILE_SURELY_UNSET_VAR"}, "not set or empty"),
        ({"secret_env": "HOME", "secret_file": "k"}, "set one"),
        ({"secret_file": "missing.key"}, "cannot be read"),
        ({"time_zone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"eta_change_s": -1}, "greater than or equal to 0"),
    ],
)
def test_a_bad_notifications_section_is_refused_naming_the_field(
    tmp_path: Path, section: dict[str, Any], problem: str
) -> None:
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in section.items())
    path = tmp_path / "station.toml"
    path.write_text(f'name = "s"\nlat = 33.44\nlon = -112.256\n\n[notifications]\n{lines}\n')
    with pytest.raises(InputError) as caught:
        load_station(path)
    assert caught.value.field is not None and caught.value.field.startswith("notifications")
    assert problem in str(caught.value)
