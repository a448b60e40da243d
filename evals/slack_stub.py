"""A stand-in for Slack's Web API on 127.0.0.1, for tests and evals of the Slack bot without a workspace.

Bolt builds a fresh ``WebClient`` per request from the app's client's ``base_url``, so the stand-in is a real
HTTP server: pass ``FakeSlack().client`` to :func:`assistant.slack.build_app`. It records every call
(method, arguments, time) and answers like Slack does (``ok``, a ``ts`` for posted messages).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from slack_sdk import WebClient

from assistant.message_model import MessageChatModel

BOT_USER = "UBOT"


def signed_headers(body: bytes, secret: str) -> dict[str, str]:
    """The headers of a form-encoded request to the bot signed as Slack signs it, timestamped now."""
    stamp = str(int(time.time()))
    sig = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={sig}",
    }


class NotedModel(MessageChatModel):
    """Answers "Noted." after ``seconds`` (tools are accepted and never called); counts its calls."""

    seconds: float = 0.0
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "noted-stub"

    def reply(self, messages: list[BaseMessage], stop: list[str] | None = None) -> AIMessage:
        self.calls += 1
        if self.seconds:
            time.sleep(self.seconds)
        return AIMessage("Noted.")


class FakeSlack:
    """A stand-in for Slack's Web API on 127.0.0.1: records every call and answers like Slack does. Bolt
    builds a fresh ``WebClient`` per request from the app's client's ``base_url``, so the fake is a server."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.times: list[tuple[str, float]] = []
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                body = json.dumps(fake.answer(self.path.rsplit("/", 1)[-1], args)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.client = WebClient(
            token="xoxb-test", base_url=f"http://127.0.0.1:{self.server.server_port}/api/"
        )

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls.append((method, args))
            self.times.append((method, time.perf_counter()))
            data: dict[str, Any] = {"ok": True}
            if method == "auth.test":
                data |= {"user_id": BOT_USER, "bot_id": "B1", "team_id": "T1", "user": "flashsale"}
            elif method in ("chat.postMessage", "chat.update"):
                data |= {
                    "channel": args.get("channel"),
                    "ts": args.get("ts") or f"1700000000.{next(self._ts):06d}",
                }
            return data

    def called(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [args for m, args in self.calls if m == method]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
