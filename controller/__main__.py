"""`python -m controller` runs the `lastmile` CLI (for machines where the console script is not on PATH)."""

from controller.cli import app

app()
