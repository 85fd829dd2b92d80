"""Vehicle specs, energy models and protocol drivers (MAVLink for drones, MQTT/VDA 5050 for robots).

`vehicles` never decides: it describes vehicles and carries out commands. Decisions live in `controller`.
"""
