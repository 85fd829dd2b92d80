"""The airframe's power draw and its 12S battery: the simulator's own energy truth.

Deliberately independent of `vehicles.energy` (the controller's predictor): the end-to-end tests
compare the controller's predictions with what this model drains, so sharing code would make those
tests prove nothing. The constants describe a Prime-Air-style small multicopter with four ~24 inch
rotors; they are our own, chosen so that hover at 8 kg takes about 800 W.

Model (rotorcraft momentum theory, e.g. Leishman, "Principles of Helicopter Aerodynamics", ch. 2-5):
  thrust T = |m g + drag| from weight and parasitic drag at the airspeed,
  induced power  P_i = T v_i / FM, with v_i from Glauert's forward-flight relation
                   v_i = v_h^2 / sqrt(V^2 + v_i^2) (iterated), v_h = sqrt(T / (2 rho A)),
  parasitic      P_p = 0.5 rho CdA V^3,
  climb          P_c = T * climb_rate / eta (descent recovers nothing),
  plus a constant profile and avionics draw.
The battery is an open-circuit-voltage curve per cell with an internal resistance, so voltage sags
under load and falls with charge, which is what ArduPilot's voltage failsafe watches.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

G = 9.80665
RHO = 1.225  # kg/m^3, ISA sea level

ROTOR_DISK_AREA_M2 = 0.73  # four rotors of about 0.48 m
FIGURE_OF_MERIT = 0.65
DRAG_AREA_M2 = 0.05  # CdA of body + payload pod
PROFILE_POWER_W = 40.0
AVIONICS_POWER_W = 25.0
CLIMB_EFFICIENCY = 0.7
IDLE_ARMED_POWER_W = 60.0  # spinning at idle on the ground

CELLS = 12
CELL_R_OHM = 0.004
# open-circuit volts per cell against state of charge (a typical LiPo curve)
_OCV_SOC = (0.0, 0.05, 0.10, 0.20, 0.40, 0.60, 0.80, 1.0)
_OCV_V = (3.27, 3.50, 3.60, 3.68, 3.77, 3.87, 4.00, 4.20)


def flight_power_w(total_mass_kg: float, airspeed_mps: float, climb_mps: float) -> float:
    """Electrical power in flight for a total mass, airspeed and climb rate (negative = descending)."""
    weight = total_mass_kg * G
    drag = 0.5 * RHO * DRAG_AREA_M2 * airspeed_mps * airspeed_mps
    thrust = math.hypot(weight, drag)
    v_h2 = thrust / (2.0 * RHO * ROTOR_DISK_AREA_M2)
    v_i = math.sqrt(v_h2)
    for _ in range(12):
        v_i = v_h2 / math.sqrt(airspeed_mps * airspeed_mps + v_i * v_i)
    induced = thrust * v_i / FIGURE_OF_MERIT
    parasitic = drag * airspeed_mps
    climb = weight * max(climb_mps, 0.0) / CLIMB_EFFICIENCY
    return induced + parasitic + climb + PROFILE_POWER_W + AVIONICS_POWER_W


def cell_ocv(soc: float) -> float:
    """Open-circuit volts of one cell at a state of charge in [0, 1] (linear between table points)."""
    soc = min(max(soc, 0.0), 1.0)
    i = bisect_left(_OCV_SOC, soc)
    if i == 0:
        return _OCV_V[0]
    s0, s1 = _OCV_SOC[i - 1], _OCV_SOC[i]
    v0, v1 = _OCV_V[i - 1], _OCV_V[i]
    return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


@dataclass
class Battery:
    """A pack drained by power demand; tracks charge, delivered energy, current and terminal voltage."""

    capacity_ah: float
    full_voltage: float = CELLS * 4.2
    consumed_ah: float = 0.0
    energy_used_wh: float = 0.0
    current_a: float = 0.0
    voltage: float = CELLS * 4.2

    def __post_init__(self) -> None:
        self.voltage = self.open_circuit_voltage()

    @property
    def remaining(self) -> float:
        """Fraction of capacity left, 0..1."""
        return min(max(1.0 - self.consumed_ah / self.capacity_ah, 0.0), 1.0)

    def open_circuit_voltage(self) -> float:
        scale = self.full_voltage / (CELLS * 4.2)
        return CELLS * cell_ocv(self.remaining) * scale

    @property
    def resting_voltage(self) -> float:
        """What ArduPilot's sag-compensated voltage estimates: terminal voltage plus I*R."""
        return self.voltage + self.current_a * CELLS * CELL_R_OHM

    def set_remaining(self, fraction: float) -> None:
        """Test hook: jump the charge (energy already counted stays counted)."""
        self.consumed_ah = self.capacity_ah * (1.0 - min(max(fraction, 0.0), 1.0))
        self.current_a = 0.0
        self.voltage = self.open_circuit_voltage()

    def draw(self, power_w: float, dt: float) -> None:
        """Deliver `power_w` for `dt` seconds: solve I from P = (OCV - I R) I, then drain."""
        ocv = self.open_circuit_voltage()
        r = CELLS * CELL_R_OHM
        if power_w <= 0.0:
            current = 0.0
        else:
            disc = ocv * ocv - 4.0 * r * power_w
            # past the pack's maximum power the current saturates at OCV / 2R (voltage halves)
            current = (ocv - math.sqrt(disc)) / (2.0 * r) if disc > 0.0 else ocv / (2.0 * r)
        self.current_a = current
        self.voltage = ocv - current * r
        self.consumed_ah += current * dt / 3600.0
        self.energy_used_wh += self.voltage * current * dt / 3600.0
