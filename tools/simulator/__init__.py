"""The market simulator: a seeded shop whose true demand parameters are known (the ground truth that every
estimate and plan is scored against).

- :mod:`tools.simulator.world`: the configuration, the world (catalogue, true parameters, customers, price
  schedule, shocks, news, competitor prices) and playing a day forward (:meth:`World.play`).
- :mod:`tools.simulator.history`: the stochastic history drawn from a world (orders, lines, reviews, stock).
- :mod:`tools.simulator.demo`: the demo shop, the world and its history written into the database.
- :mod:`tools.simulator.store`: the simulated shop in the database (rebuild its world, play a stored plan).
"""

from tools.simulator.history import (
    History,
    InventorySnapshot,
    SalesChunk,
    generate_history,
    inventory_snapshot,
    iter_sales,
)
from tools.simulator.store import load_world, play_plan
from tools.simulator.world import (
    COMPETITORS,
    COUNTRIES,
    RealisedDay,
    SimConfig,
    SimulationError,
    World,
    build_world,
)

__all__ = [
    "COMPETITORS",
    "COUNTRIES",
    "History",
    "InventorySnapshot",
    "RealisedDay",
    "SalesChunk",
    "SimConfig",
    "SimulationError",
    "World",
    "build_world",
    "generate_history",
    "inventory_snapshot",
    "iter_sales",
    "load_world",
    "play_plan",
]
