"""The assistant's agent: a tool-calling loop over a chat model, with memory, audit and a grounding check.

The chat model is a constructor argument (``ChatOpenAI`` against vLLM in production, a scripted model in
tests). One call to :meth:`Agent.ask` is one turn: the model may call tools (each call validated, run and
answered with JSON) until it writes a final answer; the answer's numbers are checked against the turn's and
earlier tool results, and an ungrounded answer is regenerated once with feedback, then flagged. Every model
exchange and tool call of the turn is written to the audit log through :func:`db.audit.record_audit`
in one transaction at the end of the turn (also when the turn fails).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool

from assistant.deps import Deps
from assistant.grounding import GroundingReport, check_grounding, feedback
from assistant.llm_tools import build_tools, error_json, is_error
from assistant.llm_tools.schemas import model_schemas, schema_text
from assistant.llm_tools.selection import ToolChoice, choose_tools
from assistant.memory import ConversationStore, find_in
from assistant.message_model import stopped_at_token_limit
from assistant.prompts import Prompt, load_prompt
from assistant.tokens import TokenCounter, trim_history
from db.audit import record_audit
from db.engine import session_scope
from tools.outside_text import unfence
from tools.planning import PlanProposal

SYSTEM_PROMPT = "system_v3"
FEEDBACK_NAME = "grounding_check"
UNGROUNDED_FLAG = "Note: some numbers in this answer could not be traced to a tool result"
EMPTY_FEEDBACK = "Your reply was empty. Answer the question, using the tool results above."
MARKUP_FEEDBACK = (
    "Your reply contains tool-call markup as text; it was not run. Call tools through the tool interface, "
    "or answer in plain words."
)
WITHHELD = "(answer withheld: {why})"
_TOOL_MARKUP = re.compile(r"</?(tool_call|tool_response|tools)>")


@dataclass
class ToolCallRecord:
    name: str
    args: dict[str, Any]
    output: str
    error: bool
    latency_ms: float


@dataclass
class AgentAnswer:
    """The outcome of one turn."""

    text: str
    session_id: str
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    grounded: bool = True
    ungrounded_numbers: list[str] = field(default_factory=list)
    grounding_rate: float = 1.0
    regenerated: bool = False
    model_calls: int = 0
    model_ms: float = 0.0
    tool_ms: float = 0.0
    turn_ms: float = 0.0
    stopped: str = "answer"  # answer, max_steps, length (cut off at the token limit), empty, markup

    @property
    def overhead_ms(self) -> float:
        """Time of the turn spent outside the model: tools, grounding, memory and audit."""
        return max(0.0, self.turn_ms - self.model_ms)


@dataclass
class _AuditEntry:
    kind: str
    name: str
    inputs: Any
    outputs: Any
    latency_ms: float
    error: str | None
    ts: dt.datetime


def _message_json(message: BaseMessage) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.type, "content": message.content}
    if isinstance(message, AIMessage) and message.tool_calls:
        data["tool_calls"] = [
            {"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        data["tool_call_id"] = message.tool_call_id
    return data


class Agent:
    """A merchandising assistant over ``tools`` driven by ``model``.

    ``memory`` keeps the conversation of ``session_id`` in the database (default: the deps' database), so
    a conversation goes on across agents, processes and restarts. ``max_steps`` bounds the model calls of
    one turn.
    """

    def __init__(
        self,
        model: BaseChatModel,
        deps: Deps,
        *,
        tools: Sequence[BaseTool] | None = None,
        prompt: Prompt | None = None,
        memory: ConversationStore | None = None,
        session_id: str | None = None,
        max_steps: int = 8,
        token_counter: TokenCounter | None = None,
    ) -> None:
        self.model = model
        self.deps = dataclasses.replace(deps, proposals=self._find_proposal)
        self.tools = list(tools) if tools is not None else build_tools(self.deps)
        self.tools_by_name = {t.name: t for t in self.tools}
        self.tool_schemas = model_schemas(self.tools)
        self.all_tools_bound = model.bind_tools(self.tool_schemas)
        self.bound = self.all_tools_bound
        self.prompt = prompt or load_prompt(SYSTEM_PROMPT)
        self.memory = memory or ConversationStore(deps.session_factory)
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.max_steps = max_steps
        self.tokens = token_counter or TokenCounter()
        self.all_schema_tokens = self.tokens.count(schema_text(self.tool_schemas))
        self.schema_tokens = self.all_schema_tokens
        self.tool_choice = ToolChoice(tuple(self.tools_by_name), "all tools")
        self.budget_scale = 1.0  # lowered when the server says the context was longer than counted
        self.model_name = str(
            getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
        )
        self.history: list[BaseMessage] = self.memory.load(self.session_id)
        self._turn: list[BaseMessage] = []

    # ---- memory ----
    def reset(self) -> None:
        self.memory.reset(self.session_id)
        self.history = []

    def tool_outputs(self) -> list[str]:
        """Every tool result of this session so far (the sources the grounding check accepts)."""
        return [str(m.content) for m in self.history if isinstance(m, ToolMessage)]

    def _find_proposal(self, proposal_id: str) -> PlanProposal | None:
        """A plan proposal shown in this turn or earlier in the conversation."""
        return find_in(self._turn, proposal_id) or self.memory.find_proposal(self.session_id, proposal_id)

    def system_message(self) -> SystemMessage:
        today = self.deps.today()
        return SystemMessage(
            self.prompt.render(
                today=today.isoformat(),
                tomorrow=(today + dt.timedelta(days=1)).isoformat(),
                currency=self.deps.currency,
            )
        )

    def _context(self, turn: list[BaseMessage]) -> list[BaseMessage]:
        settings = self.deps.settings
        budget = settings.llm_context_tokens - settings.llm_max_tokens - self.schema_tokens
        messages = [self.system_message(), *self.history, *turn]
        return trim_history(
            messages, int(budget * self.budget_scale), self.tokens.count_messages, _is_user_message
        )

    def _call_within_context(
        self,
        turn: list[BaseMessage],
        on_token: Callable[[str], None] | None,
        on_status: Callable[[str], None] | None,
    ) -> tuple[list[BaseMessage], AIMessage]:
        """The model's reply to the trimmed context; when the server refuses it as longer than its context
        (HTTP 400), the history is trimmed to what the server's own count leaves room for and sent once more.
        The smaller budget stays for the rest of the session (the estimate counted too few tokens)."""
        context = self._context(turn)
        try:
            return context, self._call_model(context, on_token)
        except Exception as exc:
            overflow = context_overflow(exc)
            if overflow is None:
                raise
        self.budget_scale *= self._shrink(context, *overflow)
        if on_status:
            on_status("the conversation was longer than the model's context: trimmed, asking again")
        context = self._context(turn)
        return context, self._call_model(context, on_token)

    def _choose_tools(self, question: str) -> None:
        """Bind the tools this turn is sent (all of them unless their schemas crowd a small context)."""
        used = {str(m.name) for m in self.history if isinstance(m, ToolMessage) and m.name}
        self.tool_choice = choose_tools(
            question,
            self.tools,
            schema_tokens=self.all_schema_tokens,
            context_tokens=self.deps.settings.llm_context_tokens,
            used=used,
        )
        if len(self.tool_choice.names) == len(self.tools):
            self.bound, self.schema_tokens = self.all_tools_bound, self.all_schema_tokens
            return
        schemas = [s for s in self.tool_schemas if s["function"]["name"] in self.tool_choice.names]
        self.bound = self.model.bind_tools(schemas)
        self.schema_tokens = self.tokens.count(schema_text(schemas))

    def _shrink(self, context: list[BaseMessage], limit: int | None, sent: int | None) -> float:
        """How much smaller the history budget must be, from the server's count of what was sent."""
        settings = self.deps.settings
        budget = (
            settings.llm_context_tokens - settings.llm_max_tokens - self.schema_tokens
        ) * self.budget_scale
        if not limit or not sent or budget <= 0:
            return 0.5
        counted = self.tokens.count_messages(context) + self.schema_tokens
        per_counted = sent / max(counted, 1)  # the server's tokens per token we counted
        room = (limit - settings.llm_max_tokens) / per_counted - self.schema_tokens
        return max(0.0, min(0.9, 0.9 * room / budget))  # 0: only the system prompt and this turn

    # ---- the turn ----
    def ask(
        self,
        question: str,
        *,
        on_token: Callable[[str], None] | None = None,
        on_status: Callable[[str], None] | None = None,
    ) -> AgentAnswer:
        """Answer ``question`` in this session; ``on_token`` gets streamed text, ``on_status`` progress."""
        if not question.strip():
            raise ValueError("empty question")
        started = time.perf_counter()
        answer = AgentAnswer(text="", session_id=self.session_id)
        audit: list[_AuditEntry] = []
        turn: list[BaseMessage] = [HumanMessage(question)]
        self._turn = turn
        self._choose_tools(question)
        failure: str | None = None
        try:
            self._run_turn(question, turn, answer, audit, on_token=on_token, on_status=on_status)
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            answer.turn_ms = (time.perf_counter() - started) * 1000
            audit.append(
                _AuditEntry(
                    kind="answer",
                    name=self.prompt.version,
                    inputs={"question": question},
                    outputs={
                        "answer": answer.text,
                        "grounded": answer.grounded,
                        "ungrounded_numbers": answer.ungrounded_numbers,
                        "regenerated": answer.regenerated,
                        "tools": [c.name for c in answer.tool_calls],
                        "model_ms": round(answer.model_ms, 2),
                        "overhead_ms": round(answer.overhead_ms, 2),
                    },
                    latency_ms=answer.turn_ms,
                    error=failure,
                    ts=self.deps.now(),
                )
            )
            kept = _history_of(turn, answer) if failure is None else []
            self._write_turn(audit, kept)
            if failure is None:
                self.history.extend(kept)
            self._turn = []
            answer.turn_ms = (time.perf_counter() - started) * 1000  # the audit transaction included
        return answer

    def _run_turn(
        self,
        question: str,
        turn: list[BaseMessage],
        answer: AgentAnswer,
        audit: list[_AuditEntry],
        *,
        on_token: Callable[[str], None] | None,
        on_status: Callable[[str], None] | None,
    ) -> None:
        sent = 0  # messages of ``turn`` already logged as model input
        for _step in range(self.max_steps):
            t0 = time.perf_counter()
            context, ai = self._call_within_context(turn, on_token, on_status)
            elapsed = (time.perf_counter() - t0) * 1000
            answer.model_calls += 1
            answer.model_ms += elapsed
            audit.append(
                _AuditEntry(
                    kind="llm",
                    name=self.model_name,
                    inputs={
                        "new_messages": [_message_json(m) for m in turn[sent:]],
                        "context_messages": len(context),
                        "prompt_version": self.prompt.version,
                        "tools": {"sent": list(self.tool_choice.names), "why": self.tool_choice.reason},
                    },
                    outputs={**_message_json(ai), "usage": ai.usage_metadata},
                    latency_ms=elapsed,
                    error=None,
                    ts=self.deps.now(),
                )
            )
            turn.append(ai)
            sent = len(turn)
            if stopped_at_token_limit(ai) and (ai.tool_calls or ai.invalid_tool_calls):
                # LangChain repairs unterminated streamed JSON: the "arguments" are a guess. Run nothing.
                answer.stopped, answer.grounded = "length", False
                answer.text = (
                    f"The model's reply was cut off at its token limit while it wrote a call of "
                    f"{_call_names(ai)}; no tool was run. Ask a narrower question, or raise "
                    "FLASHSALE_LLM_MAX_TOKENS."
                )
                return
            if ai.tool_calls:
                for call in ai.tool_calls:
                    if on_status:
                        on_status(f"calling {call['name']}({json.dumps(call['args'], default=str)})")
                    record, message = self._run_tool(call["name"], call["args"], call.get("id") or "")
                    answer.tool_calls.append(record)
                    answer.tool_ms += record.latency_ms
                    turn.append(message)
                    audit.append(
                        _AuditEntry(
                            kind="tool",
                            name=record.name,
                            inputs=record.args,
                            outputs=_parsed(record.output),
                            latency_ms=record.latency_ms,
                            error=_parsed(record.output).get("error") if record.error else None,
                            ts=self.deps.now(),
                        )
                    )
                continue
            if ai.invalid_tool_calls:  # arguments that were not JSON: say so, let the model try again
                for bad in ai.invalid_tool_calls:
                    name = str(bad.get("name") or "unknown")
                    output = error_json(
                        f"the arguments of {name} are not valid JSON: {bad.get('error') or ''}".strip(),
                        "call the tool again with a JSON object that matches its schema",
                    )
                    record = ToolCallRecord(name, {"raw": bad.get("args")}, output, True, 0.0)
                    answer.tool_calls.append(record)
                    turn.append(ToolMessage(output, tool_call_id=bad.get("id") or "", name=name))
                    audit.append(
                        _AuditEntry(
                            "tool", name, record.args, _parsed(output), 0.0, "invalid JSON", self.deps.now()
                        )
                    )
                continue
            text = ai.content if isinstance(ai.content, str) else str(ai.content)
            if not text.strip():
                if _ask_again(answer, turn, EMPTY_FEEDBACK):
                    continue
                answer.stopped, answer.grounded = "empty", False
                answer.text = "The model returned no answer (an empty reply, twice). Try asking again."
                return
            if _TOOL_MARKUP.search(text):  # a model imitating tool calls in text: never an answer
                if _ask_again(answer, turn, MARKUP_FEEDBACK):
                    continue
                answer.stopped, answer.grounded = "markup", False
                answer.text = (
                    "The model wrote tool-call markup instead of an answer (twice); nothing was run. "
                    "Try a more specific question."
                )
                return
            text = unfence(text)  # a model quoting outside text with its fence
            if stopped_at_token_limit(ai):
                text += "\n\n(cut off at the model's token limit)"
            report = self._grounding(text, turn, question)
            answer.grounding_rate = report.rate
            if report.ok:
                answer.text, answer.grounded, answer.ungrounded_numbers = text, True, []
                return
            if _ask_again(answer, turn, feedback(report)):
                if on_status:
                    on_status("regenerating: " + ", ".join(report.ungrounded) + " not found in tool results")
                continue
            answer.text = f"{text}\n\n{UNGROUNDED_FLAG}: {', '.join(dict.fromkeys(report.ungrounded))}."
            answer.grounded, answer.ungrounded_numbers = False, list(dict.fromkeys(report.ungrounded))
            return
        answer.stopped = "max_steps"
        answer.grounded = False
        answer.text = (
            f"I stopped after {self.max_steps} model calls without a final answer. "
            "Try a narrower question (one SKU, one date range)."
        )

    def _grounding(self, text: str, turn: list[BaseMessage], question: str) -> GroundingReport:
        sources = self.tool_outputs() + [str(m.content) for m in turn if isinstance(m, ToolMessage)]
        human = " ".join(str(m.content) for m in self.history if _is_user_message(m))
        return check_grounding(text, sources, question=f"{question} {human}")

    def _call_model(self, messages: list[BaseMessage], on_token: Callable[[str], None] | None) -> AIMessage:
        if on_token is None:
            result = self.bound.invoke(messages)
            return result if isinstance(result, AIMessage) else AIMessage(str(result.content))
        total: AIMessageChunk | None = None
        for chunk in self.bound.stream(messages):
            if not isinstance(chunk, AIMessageChunk):
                if isinstance(chunk, AIMessage):  # a model without a token stream: one whole message
                    if isinstance(chunk.content, str) and chunk.content:
                        on_token(chunk.content)
                    return chunk
                continue
            if isinstance(chunk.content, str) and chunk.content:
                on_token(chunk.content)
            total = chunk if total is None else total + chunk
        if total is None:
            return AIMessage("")
        return AIMessage(
            content=total.content,
            tool_calls=total.tool_calls,
            invalid_tool_calls=total.invalid_tool_calls,
            usage_metadata=total.usage_metadata,
            response_metadata=total.response_metadata,
            id=total.id,
        )

    def _run_tool(self, name: str, args: dict[str, Any], call_id: str) -> tuple[ToolCallRecord, ToolMessage]:
        t0 = time.perf_counter()
        tool = self.tools_by_name.get(name)
        message: ToolMessage | None = None
        if tool is None:
            output = error_json(f"unknown tool {name!r}", f"use one of: {', '.join(self.tools_by_name)}")
        else:
            try:
                result = tool.invoke({"name": name, "args": args, "id": call_id, "type": "tool_call"})
                if isinstance(result, ToolMessage):
                    message = result
                    output = str(result.content)
                else:
                    output = result if isinstance(result, str) else json.dumps(result, default=str)
            except Exception as exc:  # a tool bug must not end the conversation
                output = error_json(f"tool {name} failed: {type(exc).__name__}: {exc}", "try other arguments")
        if message is None:
            message = ToolMessage(output, tool_call_id=call_id, name=name)
        record = ToolCallRecord(
            name=name,
            args=dict(args),
            output=output,
            error=is_error(output),
            latency_ms=(time.perf_counter() - t0) * 1000,
        )
        return record, message

    def _write_turn(self, entries: list[_AuditEntry], messages: list[BaseMessage]) -> None:
        """The turn's audit rows and (when it succeeded) its messages, in one transaction."""
        with session_scope(self.deps.session_factory) as session:
            for e in entries:
                record_audit(
                    session,
                    actor=self.deps.actor,
                    channel=self.deps.channel,
                    kind=e.kind,
                    name=e.name,
                    inputs=e.inputs,
                    outputs=e.outputs,
                    latency_ms=round(e.latency_ms, 3),
                    session_id=self.session_id,
                    error=e.error,
                    ts=e.ts,
                )
            self.memory.append(session, self.session_id, messages, now=self.deps.now())


_CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+)")
_PROMPT_TOKENS = re.compile(r"(\d+) in the messages|has (\d+) input tokens|(\d+) tokens in the prompt")


def context_overflow(exc: Exception) -> tuple[int | None, int | None] | None:
    """For a server's refusal of a prompt longer than the model's context (HTTP 400, vLLM's wording): the
    context length and the prompt tokens the server counted, where its message states them. None for any
    other error."""
    if getattr(exc, "status_code", None) != 400:
        return None
    message = str(exc)
    limit = _CONTEXT_LIMIT.search(message)
    if limit is None and "context length" not in message:
        return None
    prompt = _PROMPT_TOKENS.search(message)
    sent = int(next(g for g in prompt.groups() if g)) if prompt else None
    return (int(limit.group(1)) if limit else None), sent


def _is_user_message(message: BaseMessage) -> bool:
    return isinstance(message, HumanMessage) and message.name != FEEDBACK_NAME


def _history_of(turn: list[BaseMessage], answer: AgentAnswer) -> list[BaseMessage]:
    """What of a finished turn goes back to the model: the question, the tool calls and their results and a
    grounded answer. Rejected replies and the feedback they got stay out (a small model copies its own
    broken pattern); a flagged or failed answer is replaced by a note that it was withheld."""
    kept: list[BaseMessage] = []
    for message in turn:
        if isinstance(message, HumanMessage) and message.name == FEEDBACK_NAME:
            if kept and isinstance(kept[-1], AIMessage) and not kept[-1].tool_calls:
                kept.pop()  # the reply the feedback rejected
            continue
        kept.append(message)
    if not answer.grounded and kept and isinstance(kept[-1], AIMessage):  # (a cut-off call has no results)
        why = _WHY_WITHHELD.get(answer.stopped, "its numbers could not be traced to a tool result")
        kept[-1] = AIMessage(WITHHELD.format(why=why))
    return kept


_WHY_WITHHELD = {
    "length": "the reply was cut off at the token limit",
    "empty": "the model returned no answer",
    "markup": "the model wrote tool-call markup as text",
}


def _ask_again(answer: AgentAnswer, turn: list[BaseMessage], message: str) -> bool:
    """Send ``message`` back to the model, once per turn (True); a second unusable reply: False."""
    if answer.regenerated:
        return False
    answer.regenerated = True
    turn.append(HumanMessage(message, name=FEEDBACK_NAME))
    return True


def _call_names(ai: AIMessage) -> str:
    names = [str(c.get("name") or "a tool") for c in [*ai.tool_calls, *ai.invalid_tool_calls]]
    return ", ".join(dict.fromkeys(names))


def _parsed(output: str) -> dict[str, Any]:
    try:
        data = json.loads(output)
    except ValueError:
        return {"text": output}
    return data if isinstance(data, dict) else {"value": data}
