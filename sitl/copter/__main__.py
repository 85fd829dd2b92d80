"""`python -m sitl.copter --count 2 ...`: the same as `lastmile sitl copter`."""

from sitl.copter.cli import main

main()
