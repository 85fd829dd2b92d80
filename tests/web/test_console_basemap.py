"""The console's optional basemap in real headless Chromium, with a local tile server (a small HTTP server
answering every /{z}/{x}/{y}.png with a PNG and noting what it was asked).

With `[console] basemap_url` the tiles load under the zones, and a place on the tiles (Web Mercator, as a
tile server draws it) lies on screen where the SVG map draws the same place (the station's metric frame),
after zooming and panning too. Without it the page is the page of before: no map library, no tile
request, nothing asked of any host but the station.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import struct
import tempfile
import threading
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.errors import InputError
from controller.service import StationService
from controller.station import load_station
from controller.store import Store
from tests.web.conftest import OPERATOR, STATION, Console, at, station_config
from tests.web.serving import ConsoleServer, plain_service

TILE = 256
LINE_UP_PX = 3.0  # a place on the tiles and on the SVG map, at most this far apart on screen


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain PNG of one colour (written by hand: the standard library has zlib but no image encoder)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


class TileServer:
    """Answers GET /{z}/{x}/{y}.png with a grey tile; `paths` is every path it was asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        body, paths = png(TILE, TILE, (90, 96, 104)), self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="tiles", daemon=True)

    def __enter__(self) -> TileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def station(**extra: Any) -> Iterator[ConsoleServer]:
    """A station without vehicle links (the map's zones are what is drawn), with the console."""
    tmp = Path(tempfile.mkdtemp(prefix="lastmile-basemap-"))
    config = station_config(tmp, **extra)

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[StationService]:
        async with plain_service(StationService(config, Store(f"sqlite:///{tmp / 's.sqlite3'}"))) as service:
            yield service

    try:
        with ConsoleServer(factory) as server:
            yield server
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tile_of(lat: float, lon: float, z: int) -> tuple[int, int, float, float]:
    """(x, y, px, py): the Web Mercator tile holding (lat, lon) at zoom z, and the place's pixel in it."""
    n = TILE * 2**z
    gx = (lon + 180.0) / 360.0 * n
    phi = math.radians(lat)
    gy = (1.0 - math.log(math.tan(phi) + 1.0 / math.cos(phi)) / math.pi) / 2.0 * n
    return int(gx // TILE), int(gy // TILE), gx % TILE, gy % TILE


def on_tiles(page: Any, lat: float, lon: float) -> tuple[float, float]:
    """Where (lat, lon) is on screen according to the tiles the page shows (the tile image's rectangle,
    with every CSS transform applied, and the place's pixel in that tile)."""
    imgs = page.eval_on_selector_all(
        "#basemap img.leaflet-tile-loaded",
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {src: e.src, x: r.left, y: r.top, w: r.width, h: r.height}; })",
    )
    z = int(imgs[0]["src"].rsplit("/", 3)[-3])
    x, y, px, py = tile_of(lat, lon, z)
    img = next((i for i in imgs if i["src"].endswith(f"/{z}/{x}/{y}.png")), None)
    assert img is not None, (f"/{z}/{x}/{y}.png", [i["src"].split("/", 3)[-1] for i in imgs])
    return img["x"] + px / TILE * img["w"], img["y"] + py / TILE * img["h"]


def on_svg(page: Any, selector: str) -> tuple[float, float]:
    r = page.eval_on_selector(
        selector, "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }"
    )
    return r[0] + r[2] / 2, r[1] + r[3] / 2


def settle(page: Any, tiles: int) -> None:
    """Until the page has loaded `tiles` tiles and none is still loading."""
    page.wait_for_function(
        "n => Number(document.querySelector('#map-pane').dataset.tiles || 0) >= n"
        " && !document.querySelector('#basemap img.leaflet-tile:not(.leaflet-tile-loaded)')",
        arg=tiles,
    )


def assert_lined_up(page: Any) -> int:
    """Each place in view lies at the same spot on the tiles and on the SVG; returns how many were seen."""
    tfr = at(6000, 0)  # the no-fly circle's centre (tests.web.conftest.zones_geojson)
    box = page.locator("#map").bounding_box()
    seen = 0
    for (lat, lon), selector in [(tfr, "#layer-zones [data-zone='tfr']"), (STATION, "#station-mark rect")]:
        sx, sy = on_svg(page, selector)
        if not (box["x"] < sx < box["x"] + box["width"] and box["y"] < sy < box["y"] + box["height"]):
            continue  # out of view: no tile under it
        tx, ty = on_tiles(page, lat, lon)
        assert math.hypot(tx - sx, ty - sy) <= LINE_UP_PX, (selector, (tx, ty), (sx, sy))
        seen += 1
    return seen


@pytest.mark.slow
def test_tiles_load_under_the_zones_and_line_up_with_them(
    open_console: Callable[..., Console], shots: Path
) -> None:
    with TileServer() as tiles, station(console={
        "basemap_url": tiles.url + "/{z}/{x}/{y}.png", "basemap_attribution": "<b>tiles</b> © test",
    }) as server:  # fmt: skip
        csp = httpx.get(server.url + "/").headers["content-security-policy"]
        assert f"img-src 'self' data: {tiles.url};" in csp and "script-src 'self';" in csp
        console = open_console(server.url, OPERATOR)
        page = console.page
        page.wait_for_selector("#basemap img.leaflet-tile-loaded")
        settle(page, 4)
        assert tiles.paths and all(p.endswith(".png") for p in tiles.paths)
        # Under the map: the SVG (zones, station) is on top where the tiles are.
        sx, sy = on_svg(page, "#layer-zones [data-zone='tfr']")
        assert page.evaluate("([x, y]) => !!document.elementFromPoint(x, y).closest('#map')", [sx, sy])
        assert page.locator(".leaflet-control-attribution").inner_text().endswith("<b>tiles</b> © test")
        assert assert_lined_up(page) == 2  # the station and the no-fly circle 6 km east of it
        page.screenshot(path=str(shots / "basemap-1-fit.png"))

        for _ in range(3):  # zoom in on the station: the tiles follow (deeper zoom, new tiles)
            page.click("#map-tools [data-zoom='in']")
        settle(page, len(tiles.paths) + 1)
        assert assert_lined_up(page) >= 1
        box = page.locator("#map").bounding_box()  # pan by dragging the map
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx - 150, cy + 90, steps=5)
        page.mouse.up()
        settle(page, 1)
        assert assert_lined_up(page) >= 1
        page.screenshot(path=str(shots / "basemap-2-zoomed.png"))
        assert console.errors == []


def test_without_a_basemap_nothing_is_loaded_and_no_tile_is_asked_for(
    open_console: Callable[..., Console],
) -> None:
    with station() as server:
        page_csp = httpx.get(server.url + "/").headers["content-security-policy"]
        assert "img-src 'self' data:;" in page_csp
        console = open_console(server.url, OPERATOR)
        page = console.page
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url))
        page.click("#map-tools [data-zoom='in']")
        page.click("#map-tools [data-zoom='fit']")
        page.wait_for_selector("body[data-ready='1']")
        assert page.evaluate("typeof window.L") == "undefined"
        assert page.locator("#basemap").count() == 0
        # Everything the page fetched since it opened (scripts, styles, API reads), and since the zooms:
        loaded = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        for url in [*loaded, *asked]:
            assert url.startswith(server.url) and "leaflet" not in url and "basemap" not in url, url
        assert console.errors == []


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("ftp://tiles.example/{z}/{x}/{y}.png", "http or https"),
        ("https://tiles.example/{z}/{x}.png", "{y} is missing"),
        ("https://tiles.example/{z}/{x}/{y}.png?key={apikey}", "{apikey} is not a tile placeholder"),
        ("https://me:pw@tiles.example/{z}/{x}/{y}.png", "no user or password"),
    ],
)
def test_a_bad_basemap_url_is_refused_with_the_field_named(tmp_path: Path, value: str, words: str) -> None:
    path = tmp_path / "station.toml"
    path.write_text(f'name = "s"\nlat = 33.44\nlon = -112.25\n\n[console]\nbasemap_url = "{value}"\n')
    with pytest.raises(InputError) as err:
        load_station(path)
    assert err.value.field == "console.basemap_url" and words in err.value.reason
