"""A station's configuration: where it is, its zones, its fleet, its weather and its services.

Loaded from a TOML file (``lastmile assign --station STATION.toml``, later ``lastmile serve``). Paths inside
the file are relative to the file, so an example station can be moved or installed as a whole.
Validation is pydantic's: a bad file gives an `InputError` naming the field and the reason.
"""

from __future__ import annotations

import os
import re
import ssl
import tomllib
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controller.airspace.station_config import AirspaceConfig
from controller.errors import InputError
from controller.tokens import TokenEntry, plaintext_problem
from geofences import LocalFrame, Zone, ZoneIndex, load_zones
from vehicles.spec import VehicleKind, VehicleSpec, default_spec

if TYPE_CHECKING:
    from controller.missions.robot import DropAction


class VehicleConfig(BaseModel):
    """One vehicle of the fleet as the station file names it; spec fields may be overridden per vehicle."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    kind: VehicleKind
    charge: float = Field(default=1.0, ge=0.0, le=1.0, description="battery state of charge, 0..1")
    online: bool = True
    url: str | None = Field(
        default=None, description="link: MAVLink URL for drones, serial number for robots"
    )
    spec: dict[str, float | str] = Field(
        default_factory=dict, description="overrides of the kind's default spec"
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="drones: MAVLink 2 signing key (64 hex digits, mode 0600; `lastmile keys generate`), "
        "relative to the station file",
    )
    signing_key_env: str | None = Field(
        default=None,
        min_length=1,
        description="drones: name of an environment variable holding the signing key (64 hex digits)",
    )
    vda5050_version: Literal["2.0.0", "2.1.0", "3.0.0"] | None = Field(
        default=None, description="robots: the VDA 5050 version the robot speaks (default: broker.version)"
    )
    map_id: str | None = Field(
        default=None,
        min_length=1,
        description="robots: the mapId the robot's own map gives the station's frame (default 'station')",
    )
    drop_action_type: str | None = Field(
        default=None,
        min_length=1,
        description="robots: the actionType of the robot's load handover, as its factsheet names it "
        "(default 'drop')",
    )
    drop_action_parameters: dict[str, str | bool | int | float | list[str | bool | int | float]] | None = (
        Field(
            default=None,
            description="robots: the handover's actionParameters; the value '{package_id}' becomes the "
            "package's id and '{payload_kg}' its mass (default: loadId, loadType 'parcel', weight)",
        )
    )

    @model_validator(mode="after")
    def _robot_fields_on_robots(self) -> VehicleConfig:
        """VDA 5050 settings belong to robots: on a drone they would be silently ignored."""
        if self.kind is not VehicleKind.ROBOT:
            for name in ("vda5050_version", "map_id", "drop_action_type", "drop_action_parameters"):
                if getattr(self, name) is not None:
                    raise ValueError(f"vehicle '{self.id}': {name} is for robots (VDA 5050), not {self.kind}")
        for key in self.drop_action_parameters or {}:
            if not key:
                raise ValueError(f"vehicle '{self.id}': drop_action_parameters has an empty key")
        return self

    def robot_drop_action(self) -> DropAction:
        """This robot's handover action for its orders (the defaults where the station file says nothing)."""
        from controller.missions.robot import DEFAULT_DROP_PARAMETERS, DropAction

        parameters = self.drop_action_parameters
        return DropAction(
            self.drop_action_type or "drop",
            dict(DEFAULT_DROP_PARAMETERS if parameters is None else parameters),
        )

    @model_validator(mode="after")
    def _one_key_source(self) -> VehicleConfig:
        """A key belongs to a drone, and comes from one place (two would leave which one is used unclear)."""
        if self.signing_key_file is not None and self.signing_key_env is not None:
            raise ValueError(f"vehicle '{self.id}': give signing_key_file or signing_key_env, not both")
        if (self.signing_key_file or self.signing_key_env) and self.kind is not VehicleKind.DRONE:
            raise ValueError(f"vehicle '{self.id}': only drones take a MAVLink signing key")
        return self

    @property
    def has_signing_key(self) -> bool:
        return self.signing_key_file is not None or self.signing_key_env is not None

    def signing_key(self) -> bytes | None:
        """This drone's 32-byte MAVLink signing key, or None; `InputError` naming the field if unusable.

        Read when asked (at load and when linking), never kept in the config: a dump of the station's
        settings must not carry it.
        """
        from vehicles.mavlink.signing import KeyFileError, parse_key, read_key_file

        if self.signing_key_file is not None:
            field = f"fleet.{self.id}.signing_key_file"
            try:
                return read_key_file(self.signing_key_file)
            except KeyFileError as exc:
                raise InputError(str(exc), field=field) from None
        if self.signing_key_env is not None:
            field = f"fleet.{self.id}.signing_key_env"
            text = os.environ.get(self.signing_key_env)
            if not text:
                raise InputError(f"environment variable {self.signing_key_env} is not set", field=field)
            try:
                return parse_key(text, source=f"environment variable {self.signing_key_env}")
            except KeyFileError as exc:
                raise InputError(str(exc), field=field) from None
        return None

    def vehicle_spec(self) -> VehicleSpec:
        """The default spec of this vehicle's kind with this vehicle's overrides applied (validated)."""
        base = default_spec(self.kind)
        if not self.spec:
            return base
        try:
            return VehicleSpec.model_validate({**base.model_dump(), **self.spec})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InputError(first["msg"], field=f"fleet.{self.id}.spec.{field}") from exc


class WeatherConfig(BaseModel):
    """Surface wind at the station; drones check it against their limit and fly legs against it."""

    model_config = ConfigDict(extra="forbid")

    wind_speed_mps: float = Field(default=0.0, ge=0.0, le=80.0)
    wind_from_deg: float = Field(default=0.0, ge=0.0, lt=360.0)


TILE_PLACEHOLDERS = {"z", "x", "y", "s", "r"}  # Leaflet's TileLayer URL template keys


class ConsoleConfig(BaseModel):
    """The web console: an optional basemap of tiles under the zones and vehicles (docs/console.md).

    None by default, for stations on closed networks: then the page loads no map library and asks nothing of
    any other host. With `basemap_url` (a slippy-map template such as
    "https://tile.example/{z}/{x}/{y}.png"), the page draws the tiles under its own layers, and its
    Content-Security-Policy lets images (only) come from that host.
    """

    model_config = ConfigDict(extra="forbid")

    basemap_url: str | None = Field(default=None, description="tile URL template with {z}, {x} and {y}")
    basemap_attribution: str | None = Field(
        default=None, max_length=300, description="shown in the map's corner, as text (the tiles' licence)"
    )
    basemap_max_zoom: int = Field(default=19, ge=1, le=22, description="the tile server's deepest zoom")

    @field_validator("basemap_url")
    @classmethod
    def _tile_template(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"must be an http or https URL template, got {url!r}")
        host = parts.netloc.rsplit("@", 1)[-1]
        if not host or "@" in parts.netloc:
            raise ValueError(f"must name a host and no user or password, got {url!r}")
        if "{" in host.removeprefix("{s}."):
            raise ValueError(f"the host may hold a placeholder only as its first label ({{s}}.), in {url!r}")
        keys = set(re.findall(r"{([^{}]*)}", url))
        missing = sorted({"z", "x", "y"} - keys)
        if missing:
            raise ValueError(f"must contain {{z}}, {{x}} and {{y}}; {{{missing[0]}}} is missing in {url!r}")
        unknown = sorted(keys - TILE_PLACEHOLDERS)
        if unknown:
            raise ValueError(f"{{{unknown[0]}}} is not a tile placeholder (use z, x, y, s, r) in {url!r}")
        if any(c.isspace() or c in "'\";" for c in url):
            raise ValueError(f"must not contain spaces, quotes, backslashes or ';', got {url!r}")
        return url

    @property
    def basemap_origin(self) -> str | None:
        """The tiles' origin as a CSP source: scheme://host[:port], a `{s}` subdomain as `*.`."""
        if self.basemap_url is None:
            return None
        parts = urlsplit(self.basemap_url)
        host = parts.netloc
        if host.startswith("{s}."):
            host = "*." + host[4:]
        return f"{parts.scheme}://{host}"


class ApiConfig(BaseModel):
    """Where `lastmile serve` listens, and who may do what: each token has one role.

    Tokens are stored as salted hashes (`controller.tokens`; `lastmile token create`), never in plaintext: a
    plaintext `token = "role"` entry is refused with the command that converts it. `tls_cert`/`tls_key`
    serve HTTPS; writes are limited per token (docs/security.md).
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8750, ge=0, le=65535)
    tokens: dict[str, TokenEntry] = Field(
        default_factory=dict, description="name -> {role, hash}; empty means no API access"
    )
    tls_cert: Path | None = Field(default=None, description="PEM certificate (chain) to serve HTTPS with")
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert")
    write_rate_per_s: float = Field(
        default=100.0,
        ge=0.0,
        description="writes (POST and other changes) each token may make per second on average; 0: no limit",
    )
    write_burst: int = Field(
        default=200, ge=1, description="writes a token may make at once before write_rate_per_s applies"
    )
    webhook_url: str | None = Field(default=None, description="receives van-fallback packages")
    webhook_events: Literal["van", "all"] = Field(
        default="van",
        description='what webhook_url receives: "van" hand-overs only, or "all" state and ETA changes too',
    )
    webhook_secret_env: str | None = Field(
        default=None, description="environment variable holding the HMAC key that signs webhook bodies"
    )
    webhook_secret_file: Path | None = Field(
        default=None, description="file holding the HMAC key that signs webhook bodies (instead of _env)"
    )
    header_timeout_s: float = Field(
        default=5.0,
        gt=0.0,
        le=300.0,
        description="a request's line and headers must arrive within this many seconds (docs/api.md)",
    )
    body_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        le=3600.0,
        description="a request's body must arrive within this many seconds of its headers (docs/api.md)",
    )

    @field_validator("tokens", mode="before")
    @classmethod
    def _no_plaintext_tokens(cls, tokens: object) -> object:
        problem = plaintext_problem(tokens)
        if problem is not None:
            raise ValueError(problem)
        return tokens

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key come together: set both or neither")
        return self

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, url: str | None) -> str | None:
        return None if url is None else check_http_url(url)

    @model_validator(mode="after")
    def _webhook_secret(self) -> ApiConfig:
        webhook_secret(self.webhook_secret_env, self.webhook_secret_file, "webhook_secret")  # readable now
        return self

    def webhook_key(self) -> bytes | None:
        """The HMAC key that signs the dispatcher's webhook bodies (None: unsigned)."""
        return webhook_secret(self.webhook_secret_env, self.webhook_secret_file, "webhook_secret")

    @property
    def tls(self) -> bool:
        """Whether the API is served over HTTPS."""
        return self.tls_cert is not None


def check_http_url(url: str) -> str:
    """A webhook's URL: http:// or https:// with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r}: a webhook URL must be http:// or https:// with a host")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number in 0..65535") from None
    return url


def webhook_secret(env: str | None, file: Path | None, field: str) -> bytes | None:
    """The HMAC key a webhook signs with, from an environment variable or a file; None when neither is set.

    Read at load (so a missing key stops `serve` before it starts, naming the field) and again when the
    webhook starts (so a rotated file is picked up on restart). Surrounding whitespace is not part of it.
    """
    if env is not None and file is not None:
        raise ValueError(f"{field}_env and {field}_file are two ways to give one key: set one")
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ValueError(f"{field}_env names {env}, which is not set or empty in the environment")
        return value.encode()
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{field}_file {file} cannot be read: {exc}") from None
        if not value:
            raise ValueError(f"{field}_file {file} is empty")
        return value.encode()
    return None


class NotificationsConfig(BaseModel):
    """`[notifications]`: state and ETA changes of each package POSTed to a messaging service's webhook.

    Texts and e-mails are that service's job; the controller tells it what happened, signed with HMAC-SHA256
    (`secret_env` or `secret_file`, required with a `webhook_url`), in order, retried until acknowledged,
    from a cursor kept in the store (docs/api.md, "Notifications").
    """

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(default=None, description="the messaging service's webhook")
    secret_env: str | None = Field(default=None, description="environment variable holding the HMAC key")
    secret_file: Path | None = Field(default=None, description="file holding the HMAC key (instead of _env)")
    eta_change_s: float = Field(
        default=300.0, ge=0.0, description="an ETA that moves by more than this many seconds is told again"
    )
    public_url: str | None = Field(
        default=None,
        description="the address customers reach this station at, for tracking links (default: a path only)",
    )
    time_zone: str = Field(
        default="UTC", description="IANA zone the tracking page and messages show times in"
    )
    track_rate_per_s: float = Field(
        default=2.0,
        ge=0.0,
        description="tracking requests each client address may make per second on average; 0: no limit "
        "(behind a proxy every customer shares its address: raise this, or limit at the proxy)",
    )
    track_burst: int = Field(default=30, ge=1, description="tracking requests an address may make at once")

    @field_validator("webhook_url", "public_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else check_http_url(url).rstrip("/")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not an IANA time zone (e.g. America/Phoenix, UTC)") from None
        return name

    @model_validator(mode="after")
    def _secret(self) -> NotificationsConfig:
        key = webhook_secret(self.secret_env, self.secret_file, "secret")
        if self.webhook_url is not None and key is None:
            raise ValueError(
                "webhook_url needs secret_env or secret_file: notifications are signed (HMAC-SHA256)"
            )
        return self

    def key(self) -> bytes | None:
        """The HMAC key that signs notification bodies."""
        return webhook_secret(self.secret_env, self.secret_file, "secret")


class BrokerConfig(BaseModel):
    """The MQTT broker the station's robots use (VDA 5050).

    `mqtts://host[:8883]` speaks TLS: the broker's certificate must chain to `ca_file` (the system's CAs when
    it is not set) and name the URL's host, so that nobody on the path can pose as the broker and read the
    controller's password and orders. `client_cert`/`client_key` serve a broker that asks for certificates.
    Relative paths are taken relative to the station file (docs/security.md).
    """

    model_config = ConfigDict(extra="forbid")

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    manufacturer: str = "lastmile"
    version: Literal["2.0.0", "2.1.0", "3.0.0"] = "2.1.0"  # each robot may say otherwise (vda5050_version)
    ca_file: Path | None = Field(default=None, description="PEM CA certificate(s) the broker's must chain to")
    client_cert: Path | None = Field(default=None, description="PEM client certificate (mqtts:// only)")
    client_key: Path | None = Field(default=None, description="PEM key of client_cert (mqtts:// only)")
    grace_s: float = Field(
        default=30.0,
        gt=0.0,
        le=3600.0,
        description="how long a robot may take to be heard again once the broker is back, before its trip "
        "ends as connection_broken (the outage itself ends no trip: the robot's own state decides)",
    )

    @field_validator("url")
    @classmethod
    def _url_usable(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            given = parts.scheme or "none"
            raise ValueError(f"{url!r}: the scheme must be mqtt:// or mqtts:// (TLS), not {given!r}")
        if not parts.hostname:
            raise ValueError(f"{url!r}: no host")
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number in range
        except ValueError:
            raise ValueError(f"{url!r}: the port is not a number in 0..65535") from None
        return url

    @model_validator(mode="after")
    def _tls_fields_need_mqtts(self) -> BrokerConfig:
        if not self.tls:
            for name in ("ca_file", "client_cert", "client_key"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is set but url is {self.url}: use mqtts:// for TLS")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key come together: set both or neither")
        return self

    @property
    def tls(self) -> bool:
        """Whether the link is MQTT over TLS (`mqtts://`)."""
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The URL's port, or MQTT's registered one: 8883 over TLS, 1883 without."""
        return urlsplit(self.url).port or (8883 if self.tls else 1883)

    def tls_context(self) -> ssl.SSLContext | None:
        """The link's TLS context (None for mqtt://); `InputError` names the file that cannot be used."""
        if not self.tls:
            return None
        from vehicles.vda5050.link import tls_context

        for name in ("ca_file", "client_cert", "client_key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise InputError(f"{path} does not exist or is not a file", field=f"broker.{name}")
        try:
            return tls_context(self.ca_file, self.client_cert, self.client_key)
        except ValueError as exc:
            field = "broker.ca_file" if str(exc).startswith("ca_file") else "broker.client_cert"
            raise InputError(str(exc), field=field) from None

    def link_options(self) -> dict[str, Any]:
        """`FleetLink`'s connection arguments: host, port, login (fields over the URL's) and TLS context."""
        parts = urlsplit(self.url)
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username or parts.username,
            "password": self.password or parts.password,
            "tls_context": self.tls_context(),
        }


class StationConfig(BaseModel):
    """Everything a controller needs to know about one delivery station."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    alt_m: float = Field(default=0.0, description="ground altitude above mean sea level")
    zones_file: Path | None = None
    altitude_ceiling_m: float = Field(
        default=120.0, gt=0.0, description="Part 107 style ceiling above ground"
    )
    launch: Literal["auto", "operator"] = "auto"
    drone_turnaround_s: float = Field(
        default=300.0, ge=0.0, description="battery swap and reload at the station"
    )
    robot_turnaround_s: float = Field(default=600.0, ge=0.0)
    weather: WeatherConfig = Field(default_factory=WeatherConfig)
    fleet: list[VehicleConfig] = Field(default_factory=list)
    store_url: str = "sqlite:///lastmile.sqlite3"
    tick_s: float = Field(default=5.0, gt=0.0, description="seconds between planning passes")
    vehicle_speedup: float = Field(
        default=1.0,
        ge=1.0,
        description="simulated vehicles whose clocks run this many times faster than the wall clock",
    )
    max_attempts: int = Field(default=2, ge=1, description="vehicle attempts before a package goes to a van")
    drones_continue_without_controller: bool = Field(
        default=True,
        description=(
            "a drone flying its delivery in AUTO keeps flying it when the controller's heartbeat stops "
            "(ArduCopter FS_OPTIONS bit 1), so a controller restart or takeover does not turn it back; "
            "outside AUTO the GCS failsafe (FS_GCS_ENABLE = RTL) still acts (docs/drones.md)"
        ),
    )
    require_signing: bool = Field(
        default=False,
        description="every drone with a link (url) must have a MAVLink signing key; one without is refused "
        "at load (docs/security.md)",
    )
    signing_state_dir: Path | None = Field(
        default=None,
        description="where drones keyed from the environment keep their signing clock (default: next to "
        "the station file); key files keep theirs next to the key",
    )
    api: ApiConfig = Field(default_factory=ApiConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    broker: BrokerConfig | None = None
    notifications: NotificationsConfig = Field(
        default_factory=NotificationsConfig, description="customers told through a messaging service"
    )
    airspace: AirspaceConfig = Field(
        default_factory=AirspaceConfig, description="pads, cruise layers, rally points (docs/airspace.md)"
    )
    source: Path | None = Field(default=None, exclude=True, description="the file this was loaded from")

    @field_validator("fleet")
    @classmethod
    def _unique_ids(cls, fleet: list[VehicleConfig]) -> list[VehicleConfig]:
        seen: set[str] = set()
        for vehicle in fleet:
            if vehicle.id in seen:
                raise ValueError(f"vehicle id '{vehicle.id}' appears twice")
            seen.add(vehicle.id)
        return fleet

    @model_validator(mode="after")
    def _specs_valid(self) -> StationConfig:
        for vehicle in self.fleet:
            vehicle.vehicle_spec()
        return self

    @model_validator(mode="after")
    def _airspace_fits(self) -> StationConfig:
        """Pads near the station, layers under its ceiling and every drone's limits (`InputError`)."""
        self.airspace.check_station(self.lat, self.lon, self.altitude_ceiling_m)
        return self

    @model_validator(mode="after")
    def _signing_keys(self) -> StationConfig:
        """Key files relative to the station file; every key readable now (not at the first flight); under
        `require_signing`, no networked drone without one."""
        base = self.source.parent if self.source is not None else None
        state_dir = self.signing_state_dir
        if state_dir is not None and base is not None and not state_dir.is_absolute():
            self.signing_state_dir = (base / state_dir).resolve()
        for vehicle in self.fleet:
            key_file = vehicle.signing_key_file
            if key_file is not None and base is not None and not key_file.is_absolute():
                vehicle.signing_key_file = (base / key_file).resolve()
            vehicle.signing_key()
            if (
                self.require_signing
                and vehicle.kind is VehicleKind.DRONE
                and vehicle.url
                and not vehicle.has_signing_key
            ):
                raise InputError(
                    f"drone '{vehicle.id}' at {vehicle.url} has no signing key, and the station requires "
                    "signing (require_signing = true): give it signing_key_file or signing_key_env "
                    "(`lastmile keys generate`, then `lastmile keys provision`)",
                    field=f"fleet.{vehicle.id}",
                )
        return self

    def signing_for(self, vehicle: VehicleConfig) -> tuple[bytes, Path | None] | None:
        """(key, where its signing clock is kept) for a keyed drone, None for one without a key.

        A key file keeps its clock next to itself; a key from the environment in `signing_state_dir`
        (default: the station file's directory), one file per drone; no place at all for a station built
        in memory without a file (the clock then starts from the wall clock).
        """
        from vehicles.mavlink.signing import state_path_for

        key = vehicle.signing_key()
        if key is None:
            return None
        if vehicle.signing_key_file is not None:
            return key, state_path_for(vehicle.signing_key_file)
        where = self.signing_state_dir or (self.source.parent if self.source is not None else None)
        return key, (where / f"{vehicle.id}.signing-state") if where is not None else None

    @cached_property
    def frame(self) -> LocalFrame:
        """The station's local metric frame, built once."""
        return LocalFrame(self.lat, self.lon)

    @cached_property
    def zones(self) -> list[Zone]:
        """The station's zones (empty without a zones file)."""
        return load_zones(self.zones_file) if self.zones_file else []

    def check_station_position(self, at: datetime | None = None) -> None:
        """Refuse a station that sits inside an exclusion zone: nothing could ever launch from it safely."""
        for kind in ("drone", "robot"):
            index = ZoneIndex(self.zones, self.frame, kind, at=at, altitude_m=0.0)
            zone = index.zone_containing(self.lon, self.lat)
            if zone is not None:
                raise InputError(
                    f"the station lies inside exclusion zone '{zone.id}' ({zone.name}) for {kind}s",
                    field="lat/lon",
                )


def load_station(path: str | Path) -> StationConfig:
    """Read a station TOML file; relative paths in it are taken relative to the file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"station file {path} does not exist", field="station") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}", field="station") from exc
    zones_file = raw.get("zones_file")
    if isinstance(zones_file, str) and not Path(zones_file).is_absolute():
        raw["zones_file"] = str((path.parent / zones_file).resolve())
    api = raw.get("api")
    if isinstance(api, dict):
        problem = plaintext_problem(api.get("tokens"), str(path))
        if problem is not None:  # said before validation, so the message names this file in its command
            raise InputError(problem, field="api.tokens")
        for name in ("tls_cert", "tls_key"):
            value = api.get(name)
            if isinstance(value, str) and not Path(value).is_absolute():
                api[name] = str((path.parent / value).resolve())
    for section, name in (("api", "webhook_secret_file"), ("notifications", "secret_file")):
        table = raw.get(section)
        value = table.get(name) if isinstance(table, dict) else None
        if isinstance(value, str) and not Path(value).is_absolute():
            table[name] = str((path.parent / value).resolve())  # type: ignore[index]
    broker = raw.get("broker")
    if isinstance(broker, dict):
        for name in ("ca_file", "client_cert", "client_key"):
            value = broker.get(name)
            if isinstance(value, str) and not Path(value).is_absolute():
                broker[name] = str((path.parent / value).resolve())
    try:
        station = StationConfig.model_validate({**raw, "source": path})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{first['msg']} (in {path})", field=field) from exc
    station.check_station_position()
    for name in ("tls_cert", "tls_key"):
        file = getattr(station.api, name)
        if file is not None and not Path(file).is_file():
            raise InputError(f"{file} does not exist or is not a file", field=f"api.{name}")
    if station.broker is not None:
        station.broker.tls_context()  # a missing or unusable certificate is found at load, not at connect
    return station
