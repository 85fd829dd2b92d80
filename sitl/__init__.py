"""Things to test against: simulators and launchers. No production logic lives here.

`sitl` imports neither `controller` nor the drivers' internals: it speaks the wire protocols itself,
so every end-to-end test also proves the protocols.
"""
