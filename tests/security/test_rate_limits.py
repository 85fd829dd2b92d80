"""Per-token write limits over real HTTP: a token past its burst gets 429 with `Retry-After` and changes
nothing, through the intake fast path and the FastAPI routes alike; other tokens and reads go on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controller.api.auth import WriteLimiter
from controller.api.errors import ApiError
from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN, package, station_config

RATE, BURST = 0.5, 3  # one write every 2 s after a burst of 3: nothing refills during the test


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ROLE_TOKEN[role]}"}


@pytest.fixture(params=[True, False], ids=["fast path", "FastAPI route"])
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiThread]:
    config = station_config(write_rate_per_s=RATE, write_burst=BURST)
    with ApiThread(config, f"sqlite:///{tmp_path / 's.sqlite3'}", fast_path=request.param) as api:
        yield api


def test_writes_past_the_burst_get_429_with_retry_after_and_store_nothing(limited: ApiThread) -> None:
    with httpx.Client(base_url=limited.url, timeout=10) as client:
        for i in range(BURST):
            ok = client.post("/v1/packages", json=package(f"k{i}"), headers=auth("dispatcher"))
            assert ok.status_code == 201, ok.text
        refused = client.post("/v1/packages", json=package("too-many"), headers=auth("dispatcher"))
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "rate_limited" and error["field"] == "Authorization"
        assert "per second" in error["reason"]
        assert refused.headers["x-frame-options"] == "DENY"  # a refusal is an answer like any other
        # Nothing was stored for the refused write; reads are not limited; the other tokens keep theirs.
        stored = client.get("/v1/packages", headers=auth("viewer")).json()["items"]
        assert sorted(p["key"] for p in stored) == [f"k{i}" for i in range(BURST)]
        for _ in range(BURST + 2):
            assert client.get("/v1/fleet", headers=auth("viewer")).status_code == 200
        other = client.post("/v1/packages", json=package("op-1"), headers=auth("operator"))
        assert other.status_code == 201


def test_every_write_route_draws_on_the_same_bucket(limited: ApiThread) -> None:
    with httpx.Client(base_url=limited.url, timeout=10, headers=auth("operator")) as client:
        assert client.post("/v1/fleet/ground", json={"reason": "drill"}).status_code == 200
        assert client.post("/v1/fleet/unground").status_code == 200
        assert client.post("/v1/packages", json=package("p")).status_code == 201
        refused = client.post("/v1/fleet/ground", json={"reason": "one too many"})
        assert refused.status_code == 429 and "retry-after" in refused.headers
        assert client.get("/v1/fleet").json()["grounded"] is False  # the refused write did nothing


def test_unknown_tokens_are_401_not_429(limited: ApiThread) -> None:
    bad = {"Authorization": "Bearer nobody.x"}
    answers = [
        httpx.post(limited.url + "/v1/packages", json=package("x"), headers=bad) for _ in range(BURST + 1)
    ]
    assert {a.status_code for a in answers} == {401}


def test_the_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = WriteLimiter(rate_per_s=2.0, burst=2, clock=lambda: now[0])
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(ApiError) as refused:
        limiter.take("a")
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "1"}
    limiter.take("b")  # another token has its own bucket
    now[0] = 0.5  # one write's worth refilled at 2 per second
    limiter.take("a")
    with pytest.raises(ApiError):
        limiter.take("a")
    now[0] = 100.0  # refills up to the burst, not beyond
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(ApiError):
        limiter.take("a")
    assert limiter.refused == 3
    unlimited = WriteLimiter(rate_per_s=0.0, burst=1)
    for _ in range(1000):
        unlimited.take("a")


def test_limits_are_part_of_the_station_file() -> None:
    config = station_config(write_rate_per_s=5, write_burst=10)
    assert (config.api.write_rate_per_s, config.api.write_burst) == (5, 10)
    default = station_config().api
    assert default.write_rate_per_s > 0 and default.write_burst >= default.write_rate_per_s  # on by default
    with pytest.raises(ValueError, match="write_burst"):
        station_config(write_burst=0)
    with pytest.raises(ValueError, match="write_rate_per_s"):
        station_config(write_rate_per_s=-1)
