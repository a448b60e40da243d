"""Versioned prompt files under prompts/: ``<name>_v<N>.md``; the version is the file name and a hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str

    @property
    def version(self) -> str:
        """``system_v3@1a2b3c4d``: the file name and the first 8 hex digits of its SHA-256."""
        return f"{self.name}@{hashlib.sha256(self.text.encode()).hexdigest()[:8]}"

    def render(self, **values: Any) -> str:
        return self.text.format(**values)


def load_prompt(name: str) -> Prompt:
    """Load ``prompts/<name>.md`` (e.g. ``system_v3``)."""
    path = PROMPTS_DIR / f"{name}.md"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.md")))
        raise FileNotFoundError(f"no prompt {name!r} in {PROMPTS_DIR}; available: {available}")
    return Prompt(name=name, text=path.read_text(encoding="utf-8"))
