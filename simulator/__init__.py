"""A synthetic claims world (one province, XML 130 tables) with labelled abuse schemes, calibrated
to published figures. Entry points: simulate(), SCHEMES, calibration_report()."""

from simulator.calibration import calibration_report
from simulator.core import SimulationResult, simulate
from simulator.schemes import SCHEMES

__all__ = ["SCHEMES", "SimulationResult", "calibration_report", "simulate"]
