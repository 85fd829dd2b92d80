"""The customer's tracking link: a token per package that opens that package's public view, nothing else."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx

from controller.api.hardening import CONTENT_SECURITY_POLICY
from controller.api.server import ApiThread
from controller.station import NotificationsConfig
from tests.api.helpers import ROLE_TOKEN, package, station_config

PUBLIC_FIELDS = {
    "state",
    "state_text",
    "by",
    "eta",
    "eta_local",
    "time_zone",
    "updated_at",
    "destination",
    "station",
}


def test_each_package_gets_a_link_that_shows_only_its_own_public_view(
    api: ApiThread, op: httpx.Client
) -> None:
    a = op.post("/v1/packages", json=package("trk-a", recipient="Ada L.", note="gate code 4711")).json()
    b = op.post("/v1/packages", json=package("trk-b", dest_lat=33.46, dest_lon=-112.24)).json()
    url_a = op.get(f"/v1/packages/{a['id']}").json()["tracking_url"]
    url_b = op.get(f"/v1/packages/{b['id']}").json()["tracking_url"]
    assert url_a.startswith("/track/") and url_b.startswith("/track/") and url_a != url_b
    assert (a["tracking_url"], b["tracking_url"]) == (url_a, url_b)  # given at intake already
    listed = {p["id"]: p["tracking_url"] for p in op.get("/v1/packages").json()["items"]}
    assert listed == {a["id"]: url_a, b["id"]: url_b}

    public = httpx.Client(base_url=api.url)  # no token: the link is the key
    view = public.get(f"/v1{url_a}").json()
    assert set(view) == PUBLIC_FIELDS  # no id, key, vehicle, reasons, recipient, note
    assert view["destination"] == {"lat": 33.45, "lon": -112.25}
    assert view["station"] == {"lat": 33.44, "lon": -112.256}
    text = public.get(f"/v1{url_a}").text
    for private in (a["id"], "trk-a", "Ada L.", "4711", "trk-b", b["id"], "vehicle_id", "reasons"):
        assert private not in text
    other = public.get(f"/v1{url_b}").json()
    assert other["destination"] == {"lat": 33.46, "lon": -112.24}

    page = public.get(url_a)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store"
    assert "Ada" not in page.text and a["id"] not in page.text  # the page holds no data of its own
    public.close()


def test_an_unknown_or_malformed_token_is_a_404_that_says_nothing_more(
    api: ApiThread, op: httpx.Client
) -> None:
    created = op.post("/v1/packages", json=package("trk-404")).json()
    token = op.get(f"/v1/packages/{created['id']}").json()["tracking_url"].rsplit("/", 1)[1]
    public = httpx.Client(base_url=api.url)
    near = token[:-1] + ("A" if token[-1] != "A" else "B")
    answers = [
        public.get(f"/v1/track/{t}")
        for t in (secrets.token_urlsafe(16), near, "x" * 500, created["id"], "trk-404")
    ]
    assert {r.status_code for r in answers} == {404}
    assert len({r.text for r in answers}) == 1  # the same answer whatever was tried
    assert public.get(f"/track/{near}").status_code == 404
    public.close()


def test_tracking_is_rate_limited_per_address(make_api: Callable[..., ApiThread]) -> None:
    config = station_config().model_copy(
        update={"notifications": NotificationsConfig(track_burst=5, track_rate_per_s=0.1)}
    )
    api = make_api(config)
    public = httpx.Client(base_url=api.url)
    answers = [public.get(f"/v1/track/{secrets.token_urlsafe(16)}") for _ in range(7)]
    assert [r.status_code for r in answers[:5]] == [404] * 5  # the burst is served (unknown tokens)
    refused = answers[-1]  # then guesses are refused: one every 10 s refills
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "tracking" in refused.json()["error"]["reason"]
    # The operator's own API is not counted against the public page's limit.
    op = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {ROLE_TOKEN['operator']}"})
    assert op.get("/v1/packages").status_code == 200
    op.close()
    public.close()


def test_tracking_links_are_absolute_with_a_public_url(make_api: Callable[..., ApiThread]) -> None:
    config = station_config().model_copy(
        update={"notifications": NotificationsConfig(public_url="https://deliveries.example.com/")}
    )
    api = make_api(config)
    disp = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {ROLE_TOKEN['dispatcher']}"})
    created = disp.post("/v1/packages", json=package("trk-abs")).json()
    url = disp.get(f"/v1/packages/{created['id']}").json()["tracking_url"]
    assert url.startswith("https://deliveries.example.com/track/")
    token = url.rsplit("/", 1)[1]
    assert httpx.get(f"{api.url}/v1/track/{token}").json()["state"] in ("received", "van")
    disp.close()
