"""The web console: a live map of the station and panels for operators, served by the controller at `/`.

`mount_console(app, service)` adds the page (`/`, `/console/...`), the few read endpoints the page needs
that the API lacks (`/v1/map`, `/v1/console/session`, `/v1/console/queue`) and one WebSocket
(`/v1/console/live`) that carries both the event stream and the fleet's positions at 4 Hz. Everything the
page *does* goes through the ordinary API routes, so the roles are enforced in one place.
"""

from controller.web.mount import mount_console

__all__ = ["mount_console"]
