"""A Sportrix-compatible live-scores simulator: the demo's upstream, the tests', the benchmarks'.

Use it in-process with ``async with Simulator(SimulatorConfig(port=0)) as sim:`` (then
``sim.url``), or run ``sportrix-ingester simulate``. See ``docs/simulator.md``.
"""

from sportrix_devkit.simulator.config import ApiKey, SimulatorConfig
from sportrix_devkit.simulator.server import Simulator

__all__ = ["ApiKey", "Simulator", "SimulatorConfig"]
