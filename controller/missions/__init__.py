"""Missions: turn an assignment into vehicle commands, follow them, and report the outcome."""

from controller.missions.results import DeliveryResult

__all__ = ["DeliveryResult"]
