"""Tolleson, Arizona example station: station.toml, zones.geojson, packages.csv (see make_example.py)."""
