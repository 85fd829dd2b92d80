"""The station's HTTP API (FastAPI): the van dispatcher's assignment API, fleet and mission endpoints for
operators, and the live event stream. Build it with `create_app(service)`; serve it with
`controller.api.server`."""

from controller.api.app import API_VERSION, create_app

__all__ = ["API_VERSION", "create_app"]
