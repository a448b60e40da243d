"""The domain: catalogue, demand, signals, the optimiser, plans and the plan service, KPIs, campaigns,
backtests, reports, the shop's clock and the market simulator. Imports only ``db``."""
