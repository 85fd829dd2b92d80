"""Simulated VDA 5050 sidewalk robots (speak MQTT themselves; no driver imports)."""

from sitl.robot.client import RobotClient, RobotFleet
from sitl.robot.sim import WALKING_SPEED, SimRobot

__all__ = ["WALKING_SPEED", "RobotClient", "RobotFleet", "SimRobot"]
