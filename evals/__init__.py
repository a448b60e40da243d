"""Evaluations and benchmarks: scripts that print figures, not unit tests."""
