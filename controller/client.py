"""A small synchronous client for a station's API (httpx), used by the operator commands in `cli_ops`.

    client = LastmileClient("http://127.0.0.1:8750", token)
    client.ground("gusts over 12 m/s")

Errors come back as `ApiError` carrying the HTTP status and the server's field and reason, or as
`Unreachable` when no server answers; both are `LastmileError`s, so the CLI prints them in one red line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any
from urllib.parse import urlencode

import httpx

from geofences.errors import LastmileError

__all__ = ["DEFAULT_URL", "ApiError", "LastmileClient", "Unreachable", "answer_of"]

DEFAULT_URL = "http://127.0.0.1:8750"


class Unreachable(LastmileError):
    """No answer from the station's API (not running, wrong URL, network down)."""


class ApiError(LastmileError):
    """The API refused a request: `status`, and the first problem's `field` and `reason` (all in `errors`)."""

    def __init__(self, status: int, field: str | None, reason: str, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.field = field
        self.reason = reason
        self.errors = errors
        where = f"field '{field}': " if field else ""
        super().__init__(f"HTTP {status}: {where}{reason}")


def answer_of(response: httpx.Response) -> Any:
    """The decoded JSON of a successful answer, or `ApiError` with the server's first field and reason."""
    if response.is_success:
        return response.json()
    try:
        body = response.json()
        errors = body.get("errors") or [body["error"]]
        first = errors[0]
        raise ApiError(response.status_code, first.get("field"), first.get("reason", ""), errors)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        raise ApiError(response.status_code, None, response.text[:200], []) from None


class LastmileClient:
    """One station's API; every method is one request."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> LastmileClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Send one request; the decoded JSON answer, or `ApiError` / `Unreachable`."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=query)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the station API at {self.url}: {exc}") from exc
        return answer_of(response)

    # --- packages ------------------------------------------------------------------------------------------

    def submit(
        self, packages: Sequence[Mapping[str, Any]], *, allow_late: bool = False
    ) -> list[dict[str, Any]]:
        """Submit packages as one batch (all or none); the per-package results in order.

        `allow_late`: accept deadlines already past (the station refuses them otherwise, naming the field).
        """
        body: dict[str, Any] = {"packages": list(packages)}
        if allow_late:
            body["allow_late"] = True
        return self.request("POST", "/v1/packages", json=body)["packages"]

    def package(self, package_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/packages/{package_id}")

    def packages(self, *, state: str | None = None, limit: int = 100, after: str | None = None) -> Any:
        return self.request("GET", "/v1/packages", params={"state": state, "limit": limit, "after": after})

    def van_fallback(self, since: int = 0, limit: int = 100) -> dict[str, Any]:
        return self.request("GET", "/v1/van-fallback", params={"since": since, "limit": limit})

    # --- fleet ---------------------------------------------------------------------------------------------

    def fleet(self) -> dict[str, Any]:
        return self.request("GET", "/v1/fleet")

    def missions(self, *, all: bool = False) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/missions", params={"all": str(all).lower()})

    def launch(self, mission_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/missions/{mission_id}/launch")

    def abort(self, mission_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/missions/{mission_id}/abort")

    def ground(self, reason: str) -> dict[str, Any]:
        return self.request("POST", "/v1/fleet/ground", json={"reason": reason})

    def unground(self) -> dict[str, Any]:
        return self.request("POST", "/v1/fleet/unground")

    def close_station(self, reason: str) -> dict[str, Any]:
        return self.request("POST", "/v1/station/close", json={"reason": reason})

    def open_station(self) -> dict[str, Any]:
        return self.request("POST", "/v1/station/open")

    def report(self, day: date | str | None = None) -> dict[str, Any]:
        return self.request("GET", "/v1/report", params={"day": str(day) if day else None})

    # --- events --------------------------------------------------------------------------------------------

    def events(self, since: int | None = None, *, open_timeout: float = 10.0) -> Iterator[dict[str, Any]]:
        """Live events from the WebSocket, as they happen (replaying those after `since` first)."""
        import json

        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        query = {k: v for k, v in {"token": self.token, "since": since}.items() if v is not None}
        ws_url = self.url.replace("http", "ws", 1) + "/v1/events?" + urlencode(query)
        try:
            socket = connect(ws_url, open_timeout=open_timeout)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise Unreachable(f"cannot open the event stream at {self.url}: {exc}") from exc
        with socket:
            try:
                for message in socket:
                    yield json.loads(message)
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code in (4401, 4403):
                    status = exc.rcvd.code - 4000
                    raise ApiError(status, "token", exc.rcvd.reason, []) from None
                raise Unreachable(f"the event stream closed: {exc}") from None
