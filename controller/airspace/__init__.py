"""Strategic deconfliction for one station's drones: pads, altitude layers and 4D volume reservations.

Every planned flight becomes volumes (`FlightIntent.volumes`) that cover it with margins for navigation,
altitude and timing errors; the station's `AirspaceBook` holds what is reserved; `fit_flight` finds the
first launch time, layers and pads at which a flight's volumes meet no other vehicle's. Two volumes that
do not intersect keep their drones more than 50 m apart horizontally or 15 m vertically
(docs/airspace.md has the arithmetic). Pure planning: no I/O, no clock but the caller's.

`StationAirspace` is the station's side of it in WGS84, configured by the station file's `[airspace]` table
(`AirspaceConfig`): pads, layers, rally points, launch delays, late landing slots and holds.
"""

from controller.airspace.book import AirspaceBook, Conflict
from controller.airspace.deconflict import Fit, fit_flight, hold_flight
from controller.airspace.errors import AirspaceBusy, AirspaceConflict, AirspaceError
from controller.airspace.flight import FlightIntent, Slot, flight_volumes, heading_deg
from controller.airspace.geojson import to_geojson
from controller.airspace.layers import LayerPlan
from controller.airspace.margins import Margins
from controller.airspace.pads import Pad
from controller.airspace.path import FlightPath, Segment
from controller.airspace.station import AirspacePlan, AirspaceStats, HoldInstruction, StationAirspace
from controller.airspace.station_config import AirspaceConfig, MarginsConfig, PadConfig, RallyConfig
from controller.airspace.volumes import KINDS, Volume

__all__ = [
    "KINDS",
    "AirspaceBook",
    "AirspaceBusy",
    "AirspaceConfig",
    "AirspaceConflict",
    "AirspaceError",
    "AirspacePlan",
    "AirspaceStats",
    "Conflict",
    "Fit",
    "FlightIntent",
    "FlightPath",
    "HoldInstruction",
    "LayerPlan",
    "Margins",
    "MarginsConfig",
    "Pad",
    "PadConfig",
    "RallyConfig",
    "Segment",
    "Slot",
    "StationAirspace",
    "Volume",
    "fit_flight",
    "flight_volumes",
    "heading_deg",
    "hold_flight",
    "to_geojson",
]
