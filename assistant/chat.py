"""Build the assistant for a front end (terminal chat, one-shot question, Slack bot) and run slash commands.

Front ends call :func:`open_assistant` (probes the model server first and raises
:class:`~assistant.llm.ModelUnavailable` with a one-line fix when none answers) and then ``agent.ask``. The
shop's clock is :mod:`tools.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from assistant.agent import Agent, AgentAnswer
from assistant.deps import make_deps
from assistant.llm import open_chat_model
from assistant.llm_tools import WRITING_TOOLS, build_tools
from assistant.settings import Settings
from assistant.tokens import TokenCounter, hub_cache_has

SLASH_HELP = {
    "/plan": "propose tomorrow's flash-sale plan and explain it",
    "/kpi": "KPIs of the last sale day",
    "/reset": "forget this conversation",
    "/history": "show the questions asked in this session",
    "/help": "list the commands",
    "/quit": "leave the chat",
}
SLASH_QUESTIONS = {
    "/plan": "Propose the flash-sale plan for tomorrow: which SKUs, at what discount and with how many "
    "units, and say why. Save it as a draft plan.",
    "/kpi": "What were the KPIs of yesterday's sale (GMV, units, gross profit, sell-through, stock-outs)?",
}


def open_assistant(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    channel: str,
    actor: str,
    model: BaseChatModel | None = None,
    session_id: str | None = None,
    can_save_drafts: bool = True,
) -> Agent:
    """An agent on ``model``, else on the model the settings name (:func:`assistant.llm.open_chat_model`),
    with the conversation ``session_id`` kept in the database. ``can_save_drafts=False`` leaves out the tools
    that write (``save_draft_plan``): the agent can only read."""
    chat_model = model if model is not None else open_chat_model(settings)
    deps = make_deps(settings, factory, actor=actor, channel=channel, chat_model=chat_model)
    # The served model's tokenizer when it is on this machine (named, or in the Hugging Face cache);
    # otherwise an estimate, without importing transformers (seconds at every start).
    tokenizer = settings.llm_tokenizer or settings.llm_local_model
    if tokenizer is None and hub_cache_has(settings.llm_model):
        tokenizer = settings.llm_model
    counter = TokenCounter.for_model(tokenizer)
    # Only the writing tools use the conversation's proposals (the agent's own deps), so the read-only tools
    # may be bound to these deps.
    tools = None if can_save_drafts else [t for t in build_tools(deps) if t.name not in WRITING_TOOLS]
    return Agent(chat_model, deps, tools=tools, session_id=session_id, token_counter=counter)


@dataclass
class SlashResult:
    """What a slash command did: a question to ask, a message to show, or quit."""

    question: str | None = None
    message: str | None = None
    quit: bool = False


def handle_slash(agent: Agent, line: str, asked: list[str]) -> SlashResult:
    """Run a chat slash command: ``/plan``, ``/kpi``, ``/reset``, ``/history``, ``/help``, ``/quit``."""
    command = line.strip().split()[0].lower()
    if command in SLASH_QUESTIONS:
        return SlashResult(question=SLASH_QUESTIONS[command])
    if command == "/reset":
        agent.reset()
        asked.clear()
        return SlashResult(message="Conversation forgotten.")
    if command == "/history":
        return SlashResult(
            message="\n".join(f"{i}. {q}" for i, q in enumerate(asked, 1)) or "(nothing asked yet)"
        )
    if command in ("/quit", "/exit"):
        return SlashResult(quit=True)
    lines = [f"{name:9} {text}" for name, text in SLASH_HELP.items()]
    prefix = "" if command == "/help" else f"Unknown command {command}.\n"
    return SlashResult(message=prefix + "\n".join(lines))


def answer_footer(answer: AgentAnswer) -> str:
    """One line under an answer: tools used, timings, and whether it is grounded."""
    tools = ", ".join(dict.fromkeys(c.name for c in answer.tool_calls)) or "no tools"
    state = "grounded" if answer.grounded else "NOT grounded"
    regen = ", regenerated once" if answer.regenerated else ""
    return (
        f"{tools} · model {answer.model_ms / 1000:.1f} s · tools {answer.tool_ms:.0f} ms · "
        f"{state}{regen} · session {answer.session_id}"
    )


class TurnPrinter:
    """Renders one turn on rich consoles: streamed tokens, progress lines, then whatever the stream missed
    (the flag of an ungrounded answer, or the whole answer when not streaming)."""

    def __init__(self, out: Console, err: Console, *, stream: bool = True) -> None:
        self.out, self.err, self.stream = out, err, stream
        self.attempt = ""  # text streamed since the last progress line

    def token(self, text: str) -> None:
        self.attempt += text
        self.out.print(text, end="", markup=False, highlight=False)

    def status(self, line: str) -> None:
        if self.attempt:
            self.out.print()
        self.attempt = ""
        self.err.print(f"[dim]… {line}[/]", highlight=False)

    def finish(self, answer: AgentAnswer) -> None:
        if self.stream and self.attempt and answer.text.startswith(self.attempt):
            rest = answer.text[len(self.attempt) :]
            self.out.print(rest, markup=False, highlight=False)
        else:
            if self.attempt:
                self.out.print()
            self.out.print(answer.text, markup=False, highlight=False)
        self.attempt = ""
        self.err.print(f"[dim]{answer_footer(answer)}[/]", highlight=False)
