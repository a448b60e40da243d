"""Every CLI command explains itself: a docstring and help text on every option (docs that cannot drift)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli import app


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    # Typer ships its own copy of click, so commands are recognised by shape, not by class.
    found = [(path, command)]
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found.extend(_walk(sub, (*path, name)))
    return found


COMMANDS = _walk(typer.main.get_command(app))


def test_the_cli_has_the_documented_commands() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    documented = {
        "db upgrade", "db current", "demo", "fit", "backtest", "plan", "plan approve", "kpi", "report",
        "plan cancel", "plan publish", "plan status", "plan replan", "plan close", "plan history",
        "plan list",
        "sim play", "daily",
        "compare", "ask", "chat", "serve-llm", "extract-signals", "slack", "draft", "schedule",
        "import catalog", "import inventory", "import orders", "import reviews", "import news",
        "import competitor-prices",
    }  # fmt: skip
    assert documented <= names, f"missing: {sorted(documented - names)}"


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "root" for p, _ in COMMANDS])
def test_command_has_help(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"`{' '.join(path)}` has no help text"
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option" and param.name != "help":
            assert (param.help or "").strip(), f"option {param.opts} of `{' '.join(path)}` has no help"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_readme_shows_every_command() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    top_level = {path[0] for path, _ in COMMANDS if path}
    missing = sorted(name for name in top_level if f"cli.py {name}" not in readme)
    assert not missing, f"README.md never shows: {missing}"
