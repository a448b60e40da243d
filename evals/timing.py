"""Summaries of measured timings, and the machine they were measured on, shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-quantile of ``values`` (``q`` in [0, 1]); 0.0 when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def machine() -> str:
    """The machine a benchmark ran on, for its printout: CPU model, cores, Python version."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model or 'unknown CPU'}, {os.cpu_count()} cores, Python {platform.python_version()}"
