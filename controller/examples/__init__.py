"""Example stations shipped with the package, so `lastmile demo` and `lastmile assign` run with no files.

The Tolleson, Arizona example's zones are illustrative: approximate, not for navigation.
"""

from pathlib import Path

TOLLESON = Path(__file__).parent / "tolleson"
EXAMPLE_STATION = TOLLESON / "station.toml"
EXAMPLE_PACKAGES = TOLLESON / "packages.csv"
EXAMPLE_ZONES = TOLLESON / "zones.geojson"
