"""The station controller as a service: planning loop, missions, operator actions, live events."""

from controller.service.carriers import Assignment, Carrier, VehicleSnapshot
from controller.service.core import StationService
from controller.service.events import EventBus

__all__ = ["Assignment", "Carrier", "EventBus", "StationService", "VehicleSnapshot"]
