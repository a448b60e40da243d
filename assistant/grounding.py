"""Grounding check: every number in a final answer must appear in, or round from, a tool result.

Numbers are read from the answer (``1,299.00``, ``$12.5k``, ``-3.4 %``, ``2026-11-24``) and compared with
every number in the conversation's tool results (and the user's own words). A number is grounded when it
equals a source number rounded to the decimals the answer shows, also after the unit conversions the tools
imply: cents to currency (/100) and fractions to percentages (x100). Integers written with trailing zeros
may round to tens or hundreds (``1,300`` from ``1,299``) as long as two significant digits remain.
Identifiers that mix letters and digits (SKUs such as ``HP-0042``, plan ``#12`` is a number and is checked)
are not numbers. Small integers up to :data:`FREE_INTEGER_MAX` (list markers, "top 3") are not checked.

A number of a result row that is about one SKU, category, brand or competitor (a dict with such a key, and
everything nested in it) grounds only a sentence that names that entity or names none: "HP-200 has 90 in
stock" is not grounded by HP-100's 90. Numbers outside such rows (totals, the question) ground any sentence.

Outside text fenced in the tool results (:mod:`tools.outside_text`: news, reviews, titles) grounds no number:
a review that says "99 % off" is no source of a discount. An answer may quote such a text whole (a product
title with its digits); the quote is not checked.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from tools.outside_text import fenced_spans, unfence, without_fenced

FREE_INTEGER_MAX = 10
SCALES = (1.0, 0.01, 100.0)
MAX_DIGITS = 18  # longer digit runs are no amount a tool reports (and lose precision as floats)

_IDENTIFIER = re.compile(r"\b(?=[\w-]*[A-Za-z_])(?=[\w-]*\d)[\w-]+\b")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-+−])?[$€£]?\s?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<suffix>\s?(?:%|k\b|K\b|M\b|bn\b))?"
)
_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)
_SUFFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "bn": 1e9}


@dataclass(frozen=True)
class AnswerNumber:
    text: str
    value: float
    decimals: int
    percent: bool


@dataclass
class GroundingReport:
    numbers: list[AnswerNumber] = field(default_factory=list)
    ungrounded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.ungrounded

    @property
    def rate(self) -> float:
        """Share of checked numbers that are grounded (1.0 when the answer has none)."""
        if not self.numbers:
            return 1.0
        return 1 - len(self.ungrounded) / len(self.numbers)


def _drop_identifier(m: re.Match[str]) -> str:
    token = m.group(0)
    return token if re.fullmatch(r"\d+(?:k|K|M|bn)", token) else " "


def answer_numbers(text: str) -> tuple[list[AnswerNumber], list[str]]:
    """The numbers an answer states (values to check) and the ISO dates it names."""
    dates = _ISO_DATE.findall(text)
    cleaned = _ISO_DATE.sub(" ", text)
    cleaned = _LIST_MARKER.sub(" ", cleaned)
    cleaned = _IDENTIFIER.sub(_drop_identifier, cleaned)
    found = []
    for m in _NUMBER.finditer(cleaned):
        raw = m.group("num")
        digits = raw.replace(",", "")
        value = float(digits)
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        suffix = (m.group("suffix") or "").strip()
        if suffix in _SUFFIX:
            value *= _SUFFIX[suffix]
            decimals -= int(math.log10(_SUFFIX[suffix]))
        if decimals == 0 and value <= FREE_INTEGER_MAX and not suffix:
            continue
        if not math.isfinite(value) or len(digits) > MAX_DIGITS:  # no tool result states such a number
            value = math.inf
        found.append(
            AnswerNumber(text=m.group(0).strip(), value=value, decimals=decimals, percent=suffix == "%")
        )
    return found, dates


def source_numbers(texts: Iterable[str]) -> set[float]:
    """Absolute values of every number in the sources (JSON of tool results, the question)."""
    values: set[float] = set()
    for text in texts:
        for m in re.finditer(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text.replace(",", "")):
            try:
                value = abs(float(m.group(0)))
            except ValueError:
                continue
            if math.isfinite(value):
                values.add(value)
    return values


def _matches(number: AnswerNumber, sources: set[float], rounded: dict[tuple[float, int], set[float]]) -> bool:
    target = abs(number.value)
    if not math.isfinite(target):
        return False
    for scale in SCALES:
        key = (scale, number.decimals)
        if key not in rounded:
            rounded[key] = {round(v * scale, number.decimals) for v in sources}
        if round(target, number.decimals) in rounded[key]:
            return True
    if number.decimals == 0 and target >= 100:
        as_int = int(target)
        zeros = len(str(as_int)) - len(str(as_int).rstrip("0"))
        significant = len(str(as_int)) - zeros
        if zeros and significant >= 2:
            for z in range(1, zeros + 1):
                for scale in SCALES:
                    key = (scale, -z)
                    if key not in rounded:
                        rounded[key] = {round(v * scale, -z) for v in sources}
                    if float(as_int) in rounded[key]:
                        return True
    return False


#: Keys of a result row that say what the row is about.
ENTITY_KEYS = ("sku", "category", "brand", "competitor", "group", "scope_value", "scope", "name")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


@dataclass
class _Sources:
    unbound: set[float] = field(default_factory=set)
    by_entity: dict[str, set[float]] = field(default_factory=dict)


def _entity_of(node: dict[str, object]) -> str | None:
    for key in ENTITY_KEYS:
        value = node.get(key)
        if isinstance(value, str) and len(value.strip()) >= 2:
            text = value.split(":", 1)[1] if key == "scope" and ":" in value else value  # "sku:HP-100"
            return unfence(text).strip().casefold()
    return None


def _collect(node: object, into: set[float], sources: _Sources) -> None:
    if isinstance(node, dict):
        entity = _entity_of(node)
        target = sources.by_entity.setdefault(entity, set()) if entity else into
        for key, value in node.items():
            target |= source_numbers([str(key)])  # "units_sold_last_28_days" states 28
            _collect(value, target, sources)
    elif isinstance(node, list):
        for value in node:
            _collect(value, into, sources)
    elif isinstance(node, str):
        into |= source_numbers([without_fenced(node)])
    elif isinstance(node, int | float) and not isinstance(node, bool) and math.isfinite(node):
        into.add(abs(float(node)))


def _sources(outputs: Iterable[str]) -> _Sources:
    sources = _Sources()
    for text in outputs:
        try:
            data = json.loads(text)
        except ValueError:
            sources.unbound |= source_numbers([without_fenced(text)])
            continue
        _collect(data, sources.unbound, sources)
    return sources


def _named(sentence: str, entities: Iterable[str]) -> list[str]:
    low = sentence.casefold()
    return [e for e in entities if e in low and re.search(rf"(?<![\w-]){re.escape(e)}(?![\w-])", low)]


def check_grounding(answer: str, tool_outputs: Iterable[str], question: str = "") -> GroundingReport:
    """Which numbers (and ISO dates) of ``answer`` no tool output or the question supports (a number of an
    entity's row only in a sentence that names that entity, or none)."""
    outputs = [*tool_outputs, question]
    quoted = sorted({s for text in outputs for s in fenced_spans(text) if len(s) >= 4}, key=len, reverse=True)
    for span in quoted:  # outside text quoted whole: its digits are a quote, not a figure
        answer = answer.replace(span, " ")
    found = _sources(outputs)
    everything = found.unbound.union(*found.by_entity.values())
    cache: dict[tuple[str, ...], tuple[set[float], dict[tuple[float, int], set[float]]]] = {}
    report = GroundingReport()
    dates: list[str] = []
    for sentence in _SENTENCE_END.split(answer):
        numbers, sentence_dates = answer_numbers(sentence)
        dates += sentence_dates
        if not numbers:
            continue
        named = tuple(sorted(_named(sentence, found.by_entity)))
        if named not in cache:
            allowed = found.unbound.union(*(found.by_entity[e] for e in named)) if named else everything
            cache[named] = (allowed, {})
        sources, rounded = cache[named]
        report.numbers += numbers
        for number in numbers:
            if not _matches(number, sources, rounded):
                report.ungrounded.append(number.text)
    joined = "\n".join(outputs)
    for date in dates:
        report.numbers.append(AnswerNumber(text=date, value=0.0, decimals=0, percent=False))
        if date[:10] not in joined:
            report.ungrounded.append(date)
    return report


def feedback(report: GroundingReport) -> str:
    """The message that asks the model to regenerate an ungrounded answer."""
    listed = ", ".join(dict.fromkeys(report.ungrounded))
    return (
        f"Grounding check failed: these numbers in your answer do not appear in any tool result of this "
        f"conversation about what their sentence names: {listed}. Every number must come from a tool result "
        f"about the SKU, category or brand it is said of (rounding is fine). Call the "
        f"tool that gives them, or rewrite the answer without them."
    )
