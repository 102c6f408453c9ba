"""Local fake of the MooVitamix API for development and tests.

Deterministic data that evolves day by day, served like the real service, with faults on demand.
"""

from dev_api.faults import Fault, FaultPlan
from dev_api.server import DevApiServer, running_api, start_api_process
from dev_api.world import World

__all__ = ["DevApiServer", "Fault", "FaultPlan", "World", "running_api", "start_api_process"]
