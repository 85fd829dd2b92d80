"""The station's brain: package intake, assignment, missions, store, API and the `lastmile` CLI."""
