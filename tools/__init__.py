"""Typed domain modules (demand, optimiser, KPIs, signals, simulator) and the LLM tools over them."""
