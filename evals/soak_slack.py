"""Soak the Slack bot's HTTP endpoint with attacks and see whether it still acknowledges real commands.

Usage::

    python -m evals.soak_slack
    python -m evals.soak_slack --commands 100 --slowloris 400 --slowloris-seconds 25

The bot runs on its real HTTP endpoint on 127.0.0.1 (:func:`assistant.slack.make_http_server`, default
limits) with signature verification; Slack's Web API is the local stand-in of :mod:`evals.slack_stub`; the
model answers "Noted." at once. One after the other it sends: signed commands, oversized bodies (64 MB
pushed by the client), a false ``Content-Length: 1000000000`` with 3 bytes, slowloris connections (headers
one byte a second), a non-numeric ``X-Slack-Request-Timestamp``, a body that is not UTF-8 and a replayed
signed command. Throughout, a probe sends a legitimate signed command every ``--probe-interval`` seconds.
Per attack it prints the status codes, the time to answer, the probe's acknowledgements during the attack
(and after all of them) against Slack's 3 s, and the process's peak RSS (server and clients share the
process). It measures and prints; it does not assert.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import resource
import select
import socket
import statistics
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from assistant.settings import Settings
from assistant.slack import FlashSaleBot, SlackCredentials, build_app, make_http_server
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import AuditLog
from evals.slack_stub import FakeSlack, NotedModel, signed_headers

SECRET = "soak-signing-secret"
TARGET_S = 3.0
MB = 1024 * 1024
_TRIGGERS = itertools.count(1)


def command(user: str = "U1", trigger: str | None = None) -> bytes:
    return urllib.parse.urlencode(
        {
            "team_id": "T1",
            "channel_id": "C1",
            "user_id": user,
            "command": "/flashsale",
            "text": "how is the sale going?",
            "response_url": "https://hooks.slack.com/x",
            "trigger_id": trigger or f"soak.{next(_TRIGGERS)}",
        }
    ).encode()


def signed(body: bytes) -> dict[str, str]:
    return signed_headers(body, SECRET)


def head(content_length: int) -> bytes:
    return (
        "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {content_length}\r\nX-Slack-Request-Timestamp: {int(time.time())}\r\n"
        "X-Slack-Signature: v0=00\r\n\r\n"
    ).encode()


def status_of(response: bytes) -> str:
    if not response:
        return "closed"
    parts = response.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 else "?"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class Outcome:
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, status: str, seconds: float) -> None:
        self.statuses[status] += 1
        self.seconds.append(seconds)


class Probe:
    """A legitimate signed command every ``interval`` seconds, its acknowledgement timed, per phase."""

    def __init__(self, url: str, interval: float) -> None:
        self.url, self.interval = url, interval
        self.phase = "start"
        self.acks: dict[str, list[tuple[int | str, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:  # a stuck probe does not stop the next one
            while not self._stop.wait(self.interval):
                pool.submit(self._one, self.phase)

    def _one(self, phase: str) -> None:
        body = command(user="UPROBE")
        started = time.perf_counter()
        try:
            with httpx.Client(trust_env=False, timeout=20) as client:
                status: int | str = client.post(self.url, content=body, headers=signed(body)).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        self.acks.setdefault(phase, []).append((status, time.perf_counter() - started))

    @contextlib.contextmanager
    def during(self, phase: str) -> Iterator[None]:
        self.phase = phase
        try:
            yield
        finally:
            time.sleep(self.interval * 2)  # let the probes sent during the phase finish
            self.phase = "between"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def attack_commands(url: str, n: int, clients: int) -> Outcome:
    out = Outcome()

    def send(_: int) -> tuple[int, float]:
        body = command(user="USOAK")
        started = time.perf_counter()
        with httpx.Client(trust_env=False, timeout=30) as client:
            status = client.post(url, content=body, headers=signed(body)).status_code
        return status, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for status, seconds in pool.map(send, range(n)):
            out.add(str(status), seconds)
    return out


def _address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def attack_oversized(url: str, n: int, size: int) -> Outcome:
    """Clients that push a ``size`` body: the time until the server answered and how much they pushed."""
    out = Outcome()
    pushed: list[int] = []
    chunk = b"x" * 65_536

    def one(_: int) -> tuple[str, float, int]:
        with socket.create_connection(_address(url), timeout=10) as sock:
            started = time.perf_counter()
            sock.sendall(head(size))
            sent, response = 0, b""
            sock.setblocking(False)
            deadline = started + 30
            while time.perf_counter() < deadline:
                want_write = [sock] if sent < size else []
                readable, writable, _errors = select.select([sock], want_write, [], 0.5)
                if readable:
                    try:
                        data = sock.recv(65_536)
                    except OSError:
                        break
                    if not data:
                        break
                    response += data
                    if b"\r\n\r\n" in response:
                        break
                elif writable:
                    try:
                        sent += sock.send(chunk[: size - sent])
                    except OSError:
                        break
            return status_of(response), time.perf_counter() - started, sent

    with ThreadPoolExecutor(max_workers=n) as pool:
        for status, seconds, sent in pool.map(one, range(n)):
            out.add(status, seconds)
            pushed.append(sent)
    out.note = f"client pushed at most {max(pushed, default=0) / MB:.1f} MB of {size / MB:.0f} MB"
    return out


def attack_false_length(url: str, n: int) -> Outcome:
    out = Outcome()

    def one(_: int) -> tuple[str, float]:
        with socket.create_connection(_address(url), timeout=30) as sock:
            started = time.perf_counter()
            sock.sendall(head(1_000_000_000) + b"abc")
            response = b""
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                while data := sock.recv(65_536):
                    response += data
            return status_of(response), time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=n) as pool:
        for status, seconds in pool.map(one, range(n)):
            out.add(status, seconds)
    return out


def attack_slowloris(url: str, n: int, seconds: float) -> Outcome:
    """``n`` connections sending their headers one byte a second: when did the server drop each?"""
    out = Outcome()
    started = time.perf_counter()
    socks: dict[socket.socket, float] = {}
    refused = 0
    for _ in range(n):
        try:
            sock = socket.create_connection(_address(url), timeout=5)
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
            sock.setblocking(False)
            socks[sock] = time.perf_counter()
        except OSError:
            refused += 1
    deadline = started + seconds
    while socks and time.perf_counter() < deadline:
        time.sleep(1.0)
        for sock, opened in list(socks.items()):
            try:
                if select.select([sock], [], [], 0)[0] and sock.recv(1024) == b"":
                    raise ConnectionResetError
                sock.send(b"a")
            except OSError:
                out.add("closed", time.perf_counter() - opened)
                sock.close()
                del socks[sock]
    for sock in socks:
        out.statuses["still open"] += 1
        sock.close()
    out.note = f"{n} opened, {refused} refused; dropped after (s) = time to answer"
    return out


def attack_bad_timestamp(url: str, n: int) -> Outcome:
    out = Outcome()
    for stamp in itertools.islice(itertools.cycle(["abc", "1e9", "", "17000000.5"]), n):
        body = command()
        headers = signed(body) | {"X-Slack-Request-Timestamp": stamp}
        started = time.perf_counter()
        with httpx.Client(trust_env=False, timeout=10) as client:
            out.add(
                str(client.post(url, content=body, headers=headers).status_code),
                time.perf_counter() - started,
            )
    return out


def attack_non_utf8(url: str, n: int) -> Outcome:
    out = Outcome()
    for _ in range(n):
        body = b"text=\xff\xfe\xfd&user_id=U1&command=%2Fflashsale"
        started = time.perf_counter()
        with httpx.Client(trust_env=False, timeout=10) as client:
            status = client.post(url, content=body, headers=signed(body)).status_code
        out.add(str(status), time.perf_counter() - started)
    return out


def attack_replay(url: str, n: int, slack: FakeSlack, answered: Callable[[], int]) -> Outcome:
    out = Outcome()
    body = command(user="UREPLAY")
    headers = signed(body)
    for _ in range(n):
        started = time.perf_counter()
        with httpx.Client(trust_env=False, timeout=10) as client:
            status = client.post(url, content=body, headers=headers).status_code
        out.add(str(status), time.perf_counter() - started)
    time.sleep(1.0)
    roots = [a for a in slack.called("chat.postMessage") if "UREPLAY" in str(a.get("text"))]
    out.note = f"question posted {len(roots)}x and answered {answered()}x (audit) for {n} sends"
    return out


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} / {max(values):.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=40, help="Signed commands of the first attack.")
    parser.add_argument("--clients", type=int, default=20, help="Threads sending them at once.")
    parser.add_argument("--oversized", type=int, default=4, help="Clients pushing a 64 MB body at once.")
    parser.add_argument("--oversized-mb", type=int, default=64, help="Size of each oversized body.")
    parser.add_argument("--false-length", type=int, default=4, help="Requests claiming 1e9 bytes, sending 3.")
    parser.add_argument("--slowloris", type=int, default=200, help="Slowloris connections.")
    parser.add_argument("--slowloris-seconds", type=float, default=25.0, help="How long they keep trying.")
    parser.add_argument("--malformed", type=int, default=8, help="Bad-timestamp and non-UTF-8 requests each.")
    parser.add_argument("--replays", type=int, default=5, help="Sends of one signed command.")
    parser.add_argument("--probe-interval", type=float, default=0.5, help="Seconds between probe commands.")
    args = parser.parse_args(argv)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" under the burst

    console = Console(width=150)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'shop.db'}")
        upgrade(engine)
        cfg = Settings(today="2026-07-01", slack_rate_per_minute=100_000, slack_rate_burst=100_000)
        model = NotedModel()
        bot = FlashSaleBot(cfg, make_session_factory(engine), model=model, workers=4)
        slack = FakeSlack()
        app = build_app(
            bot, SlackCredentials("xoxb-soak", SECRET), client=slack.client, token_verification=False
        )
        server = make_http_server(app, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/slack/events"
        limits = server.limits
        factory = make_session_factory(engine)

        def answered() -> int:
            with factory() as session:
                query = sa.select(sa.func.count()).where(
                    AuditLog.actor == "UREPLAY", AuditLog.kind == "slack"
                )
                return int(session.scalar(query) or 0)

        attacks: list[tuple[str, Callable[[], Outcome]]] = [
            (f"{args.commands} signed commands", lambda: attack_commands(url, args.commands, args.clients)),
            (
                f"{args.oversized} x {args.oversized_mb} MB body",
                lambda: attack_oversized(url, args.oversized, args.oversized_mb * MB),
            ),
            (
                f"{args.false_length} x Content-Length 1e9, 3 bytes",
                lambda: attack_false_length(url, args.false_length),
            ),
            (
                f"{args.slowloris} slowloris connections",
                lambda: attack_slowloris(url, args.slowloris, args.slowloris_seconds),
            ),
            (f"{args.malformed} x non-numeric timestamp", lambda: attack_bad_timestamp(url, args.malformed)),
            (f"{args.malformed} x non-UTF-8 body", lambda: attack_non_utf8(url, args.malformed)),
            (f"{args.replays} x replayed command", lambda: attack_replay(url, args.replays, slack, answered)),
        ]
        probe = Probe(url, args.probe_interval)
        probe.start()
        before_mb = peak_rss_mb()
        rows = []
        for name, attack in attacks:
            with probe.during(name):
                started = time.perf_counter()
                outcome = attack()
                took = time.perf_counter() - started
            rows.append((name, outcome, took, peak_rss_mb()))
        with probe.during("after the attacks"):
            time.sleep(3.0)
        probe.stop()
        server.shutdown()
        server.server_close()
        bot.close()
        slack.close()
        engine.dispose()

    table = Table(
        title=f"Slack endpoint soak: body limit {limits.max_body_bytes:,} B, read timeout "
        f"{limits.read_timeout_s:g} s, request timeout {limits.request_timeout_s:g} s, "
        f"{limits.max_connections} connections, {limits.threads} threads"
    )
    for col in ("attack", "statuses", "answer s (median / max)", "probe acks (ok/n, max s)", "peak RSS MB"):
        table.add_column(col, justify="left" if col in ("attack", "statuses") else "right")

    def probe_cell(phase: str) -> str:
        acks = probe.acks.get(phase, [])
        ok = sum(1 for status, seconds in acks if status == 200 and seconds < TARGET_S)
        worst = max((s for _, s in acks), default=0.0)
        return f"{ok}/{len(acks)} < {TARGET_S:g} s, max {worst:.3f}"

    table.add_row("before the attacks (server up)", "-", "-", "-", f"{before_mb:.0f}")
    for name, outcome, _took, rss in rows:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.statuses.items()))
        table.add_row(name, statuses, _fmt(outcome.seconds), probe_cell(name), f"{rss:.0f}")
    table.add_row("after the attacks", "-", "-", probe_cell("after the attacks"), f"{peak_rss_mb():.0f}")
    console.print(table)
    for name, outcome, took, _ in rows:
        if outcome.note:
            console.print(f"{name}: {outcome.note} (attack took {took:.1f} s)", highlight=False)


if __name__ == "__main__":
    main()
