"""Geometry only: zones, a station's local metric frame, vectorized path checks and detours.

This package imports no protocol and nothing else of ours; `vehicles` and `controller` build on it.
"""
