"""The factsheet of a simulated sidewalk robot, in the 2.x or 3.0.0 shape (VDA 5050 factsheet schemas).

Dimensions are those of a Starship-class delivery robot (about 0.68 x 0.57 x 0.6 m, 10 kg payload). Its
`drop` lists the parameters it understands (all optional), so a master can check an order against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sitl.robot.sim import SimRobot

__all__ = ["factsheet"]


def factsheet(robot: SimRobot, head: dict[str, Any]) -> dict[str, Any]:
    """A factsheet for a small wheeled sidewalk robot (dimensions of a Starship-class robot)."""
    actions = ["drop", "cancelOrder", "startPause", "stopPause", "stateRequest", "factsheetRequest"]
    drop_parameters = [
        {
            "key": "loadId",
            "valueDataType": "STRING",
            "description": "the parcel handed over",
            "isOptional": True,
        },
        {"key": "loadType", "valueDataType": "STRING", "isOptional": True},
        {"key": "weight", "valueDataType": "NUMBER", "description": "kg", "isOptional": True},
    ]
    if robot.version.startswith("2"):
        return {
            **head,
            "typeSpecification": {
                "seriesName": "lastmile-scout-sim",
                "agvKinematic": "DIFF",
                "agvClass": "CARRIER",
                "maxLoadMass": robot.max_payload_kg,
                "localizationTypes": ["NATURAL"],
                "navigationTypes": ["AUTONOMOUS"],
            },
            "physicalParameters": {
                "speedMin": 0.0,
                "speedMax": robot.speed,
                "accelerationMax": 1.0,
                "decelerationMax": 2.0,
                "heightMax": 0.6,
                "width": 0.57,
                "length": 0.68,
            },
            "protocolLimits": {
                "maxStringLens": {},
                "maxArrayLens": {},
                "timing": {"minOrderInterval": 0.1, "minStateInterval": 0.1},
            },
            "protocolFeatures": {
                "optionalParameters": [],
                "agvActions": [
                    {
                        "actionType": a,
                        "actionScopes": ["NODE"] if a == "drop" else ["INSTANT"],
                        **({"actionParameters": drop_parameters} if a == "drop" else {}),
                    }
                    for a in actions
                ],
            },
            "agvGeometry": {},
            "loadSpecification": {},
        }
    return {
        **head,
        "typeSpecification": {
            "seriesName": "lastmile-scout-sim",
            "mobileRobotKinematics": "DIFF",
            "mobileRobotClass": "CARRIER",
            "maximumLoadMass": robot.max_payload_kg,
            "localizationTypes": ["NATURAL"],
            "navigationTypes": ["AUTONOMOUS"],
        },
        "physicalParameters": {
            "minimumSpeed": 0.0,
            "maximumSpeed": robot.speed,
            "maximumAcceleration": 1.0,
            "maximumDeceleration": 2.0,
            "minimumHeight": 0.0,
            "maximumHeight": 0.6,
            "width": 0.57,
            "length": 0.68,
        },
        "protocolLimits": {
            "maximumStringLengths": {},
            "maximumArrayLengths": {},
            "timing": {"minimumOrderInterval": 0.1, "minimumStateInterval": 0.1},
        },
        "protocolFeatures": {
            "optionalParameters": [],
            "mobileRobotActions": [
                {
                    "actionType": a,
                    "actionScopes": ["NODE"] if a == "drop" else ["INSTANT"],
                    "pauseAllowed": a == "drop",
                    "cancelAllowed": a == "drop",
                    **({"actionParameters": drop_parameters} if a == "drop" else {}),
                }
                for a in actions
            ],
        },
        "mobileRobotGeometry": {},
        "loadSpecification": {},
    }
