"""Measure how fast the Slack bot acknowledges ``/flashsale`` while slow answers pile up (Slack's 3 s rule).

Usage::

    python -m evals.bench_slack_ack                       # 40 commands, 4 workers, a model taking 2 s
    python -m evals.bench_slack_ack --commands 100 --model-seconds 5 --workers 2

The bot runs on its real HTTP endpoint on 127.0.0.1 with signature verification; Slack's Web API is the
local stand-in of :mod:`evals.slack_stub`; the model is a stub that waits ``--model-seconds`` and answers
without numbers (no tools), so the figures are the bot's own: the HTTP acknowledgement of each signed
command (sent all at once from ``--clients`` threads) and the time until its answer is posted in the
thread, which grows with the queue. Target: every acknowledgement well under 3 s. It measures, it does not
assert.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from assistant.settings import Settings
from assistant.slack import FlashSaleBot, SlackCredentials, build_app, make_http_server
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from evals.slack_stub import FakeSlack, NotedModel, signed_headers
from evals.timing import percentile

SECRET = "bench-signing-secret"
TARGET_S = 3.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=40, help="Slash commands to send.")
    parser.add_argument("--clients", type=int, default=20, help="Threads sending them at once.")
    parser.add_argument("--workers", type=int, default=4, help="The bot's answer workers.")
    parser.add_argument("--model-seconds", type=float, default=2.0, help="Time the stub model takes.")
    args = parser.parse_args(argv)

    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'shop.db'}")
        upgrade(engine)
        cfg = Settings(today="2026-07-01", slack_rate_per_minute=1000, slack_rate_burst=1000)
        bot = FlashSaleBot(
            cfg,
            make_session_factory(engine),
            model=NotedModel(seconds=args.model_seconds),
            workers=args.workers,
        )
        slack = FakeSlack()
        app = build_app(
            bot, SlackCredentials("xoxb-bench", SECRET), client=slack.client, token_verification=False
        )
        server = make_http_server(app, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/slack/events"

        sent: dict[str, float] = {}
        acks: list[float] = []
        statuses: list[int] = []
        lock = threading.Lock()

        def send(i: int) -> None:
            body = urllib.parse.urlencode(
                {
                    "team_id": "T1",
                    "channel_id": f"C{i}",
                    "user_id": f"U{i}",
                    "command": "/flashsale",
                    "text": f"question {i}",
                    "response_url": "https://hooks.slack.com/x",
                    "trigger_id": str(i),
                }
            ).encode()
            with httpx.Client(trust_env=False, timeout=30) as client:
                t0 = time.perf_counter()
                response = client.post(url, content=body, headers=signed_headers(body, SECRET))
                elapsed = time.perf_counter() - t0
            with lock:
                sent[f"C{i}"] = t0
                acks.append(elapsed)
                statuses.append(response.status_code)

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(send, range(args.commands)))
        deadline = time.monotonic() + args.commands * args.model_seconds / max(args.workers, 1) + 60
        while time.monotonic() < deadline:
            answered = [a for a in slack.called("chat.postMessage") if a.get("thread_ts")]
            if len(answered) >= args.commands:
                break
            time.sleep(0.05)
        total = time.perf_counter() - started
        answer_s: list[float] = []
        for method, args_, at in zip(
            (m for m, _ in slack.calls), (a for _, a in slack.calls), (t for _, t in slack.times), strict=True
        ):
            if method == "chat.postMessage" and args_.get("thread_ts") and args_["channel"] in sent:
                answer_s.append(at - sent[args_["channel"]])
        server.shutdown()
        server.server_close()
        bot.close()
        slack.close()
        engine.dispose()

    table = Table(
        title=f"/flashsale: {args.commands} commands from {args.clients} clients, {args.workers} "
        f"answer workers, model {args.model_seconds:g} s"
    )
    for col in ("measure", "n", "median s", "p95 s", "max s"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for name, values in (("HTTP acknowledgement", acks), ("answer posted in thread", answer_s)):
        table.add_row(
            name,
            str(len(values)),
            f"{statistics.median(values):.3f}" if values else "-",
            f"{percentile(values, 0.95):.3f}",
            f"{max(values, default=0):.3f}",
        )
    console.print(table)
    ok = sum(1 for s in statuses if s == 200)
    late = sum(1 for a in acks if a >= TARGET_S)
    console.print(
        f"{ok}/{len(statuses)} acknowledged with HTTP 200; {late} at or over {TARGET_S:g} s; "
        f"{len(answer_s)}/{args.commands} answered in {total:.1f} s."
    )


if __name__ == "__main__":
    main()
