"""`swarm simulate`: many swarm nodes in one process, on the in-memory network or real libp2p,
driven in rounds with injected faults, and the JSON report of how the swarm did."""

from node.sim.config import FaultError, Faults, NetworkKind, SimConfig
from node.sim.partition import Partition
from node.sim.plan import open_network, settle
from node.sim.report import build_report
from node.sim.results import NodeResult, SimResults
from node.sim.simulator import Simulation

__all__ = [
    "FaultError",
    "Faults",
    "NetworkKind",
    "NodeResult",
    "Partition",
    "SimConfig",
    "SimResults",
    "Simulation",
    "build_report",
    "open_network",
    "settle",
]
