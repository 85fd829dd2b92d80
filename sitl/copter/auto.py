"""AUTO mode: runs the stored mission item by item, as AP_Mission + ArduCopter/mode_auto.cpp do.

Ordering follows libraries/AP_Mission/AP_Mission.cpp: a NAV command runs until it verifies complete
(then MISSION_ITEM_REACHED is sent, as ModeAuto::verify_command_callback does); the DO commands that
follow it run when it completes, before the next NAV command starts (advance_current_nav_cmd);
DO_JUMP is followed with its repeat count. A NAV command is any id <= MAV_CMD_NAV_LAST (95).
At the end of the mission the copter holds position in the air, or disarms if it is on the ground
(ModeAuto::exit_mission).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import commands_do
from sitl.copter.items import Item
from sitl.copter.payload import PayloadPlace

if TYPE_CHECKING:
    from sitl.copter.nav import Navigator
    from sitl.copter.vehicle import SimCopter

NAV_LAST = 95  # MAV_CMD_NAV_LAST, libraries/AP_Mission/AP_Mission.cpp is_nav_cmd()

NAMES = {
    mavlink.MAV_CMD_NAV_WAYPOINT: "WP",
    mavlink.MAV_CMD_NAV_TAKEOFF: "Takeoff",
    mavlink.MAV_CMD_NAV_LAND: "Land",
    mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH: "RTL",
    mavlink.MAV_CMD_NAV_DELAY: "Delay",
    mavlink.MAV_CMD_NAV_PAYLOAD_PLACE: "PayloadPlace",
    mavlink.MAV_CMD_NAV_LOITER_TIME: "LoiterTime",
    mavlink.MAV_CMD_NAV_LOITER_UNLIM: "LoiterUnlim",
    mavlink.MAV_CMD_DO_GRIPPER: "Gripper",
    mavlink.MAV_CMD_DO_WINCH: "Winch",
    mavlink.MAV_CMD_DO_CHANGE_SPEED: "ChangeSpeed",
    mavlink.MAV_CMD_DO_JUMP: "Jump",
}


# NAV commands whose verify says "Reached command #N" (INFO) when done (mode_auto.cpp verify_nav_wp,
# verify_loiter_time, verify_circle), after MISSION_ITEM_REACHED as ArduCopter 4.7 SITL sends them.
REACHED_TEXT_COMMANDS = frozenset({mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_CMD_NAV_LOITER_TIME})


def is_nav(command: int) -> bool:
    return command <= NAV_LAST


class MissionRunner:
    """State of the mission in AUTO: which NAV item runs and what phase it is in."""

    def __init__(self, v: SimCopter, nav: Navigator) -> None:
        self.v = v
        self.nav = nav
        self.current = 0  # index of the running NAV item (0: not started)
        self.complete = False
        self.running = False
        self.phase = ""
        self.timer = 0.0
        self.target: tuple[float, float] | None = None
        self.target_alt = 0.0
        self.start_alt = 0.0
        self.jumps: dict[int, int] = {}
        self.place = PayloadPlace(v, self)

    # ---- control -------------------------------------------------------------------------------
    def start(self) -> None:
        """AP_Mission::start_or_resume: resume at the current item unless finished (MIS_RESTART=0)."""
        v = self.v
        v.auto_armed = True
        items = v.missions.mission
        restart = v.params["MIS_RESTART"] != 0
        if self.complete or restart or not (1 <= self.current < len(items)):
            self.current = 0
            self.jumps.clear()
            self._advance_from(1)
        else:
            self._begin(self.current)
        self.running = True

    def set_current(self, seq: int) -> bool:
        """DO_SET_MISSION_CURRENT / MISSION_SET_CURRENT: jump (AP_Mission::set_current_cmd)."""
        items = self.v.missions.mission
        if not 1 <= seq < len(items):
            return False
        self.complete = False
        if self.v.mode_number.name == "AUTO" and self.running:
            self._advance_from(seq)
        else:
            self.current = seq
            self.v.missions.announce_current(seq)
        return True

    def wants_takeoff(self) -> bool:
        return self.running and not self.complete

    # ---- sequencing ----------------------------------------------------------------------------
    def _advance_from(self, index: int) -> None:
        """Run DO items from `index` until the next NAV item, then start it (or finish)."""
        items = self.v.missions.mission
        guard = 0
        while index < len(items) and guard < 1000:
            guard += 1
            item = items[index]
            if item.command == mavlink.MAV_CMD_DO_JUMP:
                index = self._jump(index, item)
                continue
            if is_nav(item.command):
                self._begin(index)
                return
            self.v.send_text(f"Mission: {index} {NAMES.get(item.command, item.command)}")
            commands_do.run_do_command(self.v, item.command, item.params(), item)
            index += 1
        self._finish()

    def _jump(self, index: int, item: Item) -> int:
        target, repeat = int(item.param1), int(item.param2)
        done = self.jumps.get(index, 0)
        if repeat < 0 or done < repeat:
            self.jumps[index] = done + 1
            return target
        return index + 1

    def _finish(self) -> None:
        v = self.v
        self.complete = True
        self.running = False
        self.target = (v.lat, v.lon)
        self.target_alt = v.alt_m
        v.send_text("Mission complete")
        v.missions.announce_current(self.current)
        if v.landed:
            v.disarm()

    def _begin(self, index: int) -> None:
        v = self.v
        item = v.missions.mission[index]
        self.current = index
        self.phase = "go"
        self.timer = 0.0
        self.start_alt = v.alt_m
        v.send_text(f"Mission: {index} {NAMES.get(item.command, item.command)}")
        v.missions.announce_current(index)
        lat, lon = item.lat, item.lon
        here = (v.lat, v.lon)
        self.target = (lat, lon) if (item.x or item.y) else here
        # ModeAuto::loc_from_cmd: zero altitude means the current altitude
        self.target_alt = v.missions.rel_alt(item) if item.z else v.alt_m
        if item.command == mavlink.MAV_CMD_NAV_TAKEOFF:
            self.target = here
            self.target_alt = max(v.missions.rel_alt(item), v.alt_m)
        elif item.command == mavlink.MAV_CMD_NAV_LAND:
            self.target_alt = v.alt_m  # fly over the point at the current altitude, then descend
        elif item.command == mavlink.MAV_CMD_NAV_PAYLOAD_PLACE:
            self.target_alt = v.alt_m  # ModeAuto::do_payload_place: shift_alt_to_current_alt
            self.place.begin(item)
        elif item.command == mavlink.MAV_CMD_NAV_DELAY:
            self.target, self.target_alt = here, v.alt_m
        elif item.command == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self.nav._rtl_start()

    def _reached(self) -> None:
        v = self.v
        v.emit(mavlink.MAVLink_mission_item_reached_message(self.current))
        if v.missions.mission[self.current].command in REACHED_TEXT_COMMANDS:
            # ModeAuto::verify_nav_wp / verify_loiter_time (ArduCopter/mode_auto.cpp)
            v.send_text(f"Reached command #{self.current}")
        self._advance_from(self.current + 1)

    # ---- per step ------------------------------------------------------------------------------
    def step(self, dt: float, wind: tuple[float, float]) -> None:
        v = self.v
        if not self.running:
            if not v.landed:
                self.nav.fly_to(self.target, self.target_alt, dt, wind)
            return
        if self.current >= len(v.missions.mission):  # the mission was cut short under us
            self._finish()
            return
        item = v.missions.mission[self.current]
        cmd = item.command
        done = False
        radius = v.params["WPNAV_RADIUS"] / 100.0
        if cmd == mavlink.MAV_CMD_NAV_TAKEOFF:
            self.nav.climb_from_ground()
            _, dz = self.nav.fly_to(self.target, self.target_alt, dt, wind)
            done = dz < 0.3
        elif cmd in (mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_CMD_NAV_LOITER_TIME):
            dist, dz = self.nav.fly_to(self.target, self.target_alt, dt, wind)
            if self.phase == "go" and dist < radius and dz < 1.0:
                self.phase = "hold"
            if self.phase == "hold":
                self.timer += dt
                done = self.timer >= max(item.param1, 0.0)
        elif cmd == mavlink.MAV_CMD_NAV_LOITER_UNLIM:
            self.nav.fly_to(self.target, self.target_alt, dt, wind)
        elif cmd == mavlink.MAV_CMD_NAV_DELAY:
            self.nav.fly_to(self.target, self.target_alt, dt, wind)
            self.timer += dt
            done = self.timer >= max(item.param1, 0.0)
        elif cmd == mavlink.MAV_CMD_NAV_LAND:
            done = self._land(dt, wind, radius)
        elif cmd == mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self.nav._rtl_step(dt, wind)
            done = not v.armed
        elif cmd == mavlink.MAV_CMD_NAV_PAYLOAD_PLACE:
            done = self._payload_place(item, dt, wind, radius)
        else:
            done = True  # NAV commands this simulator does not fly complete at once
        if done:
            if cmd in (mavlink.MAV_CMD_NAV_LAND, mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH):
                v.emit(mavlink.MAVLink_mission_item_reached_message(self.current))
                self._finish()
            else:
                self._reached()

    def _land(self, dt: float, wind, radius: float) -> bool:
        if self.phase == "go":
            dist, _ = self.nav.fly_to(self.target, self.target_alt, dt, wind)
            if dist < 0.5 and self.v.groundspeed_mps < 0.3:
                self.phase = "land"
            return False
        return self.nav.land_step(self.target, dt, wind)

    def _payload_place(self, item: Item, dt: float, wind, radius: float) -> bool:
        """NAV_PAYLOAD_PLACE as ArduCopter/mode_auto.cpp PayloadPlace::run does it (`payload.py`)."""
        return self.place.step(item, dt, wind)
