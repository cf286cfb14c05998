"""A synthetic claims world (one province, XML 130 tables) with labelled abuse schemes, calibrated
to published figures. Entry points: simulate(), SCHEMES, calibration_report()."""

from simulator.calibration import calibration_report
from simulator.core import SimulationResult, simulate
from simulator.randomize import WorldDraw, draw_world
from simulator.schemes import SCHEMES

__all__ = [
    "SCHEMES",
    "SimulationResult",
    "WorldDraw",
    "calibration_report",
    "draw_world",
    "simulate",
]
