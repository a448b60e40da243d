"""A local HTTP server that speaks the OpenAI chat-completions API the way vLLM does.

It answers from a script (a queue of replies) and records every request, so tests exercise the real client
path (``ChatOpenAI`` -> httpx -> HTTP -> JSON/SSE parsing) and assert what the client sent: the tools schema,
the messages, the tool results. Formats follow vLLM's OpenAI server: tool calls carry ids
``chatcmpl-tool-<hex>``, ``arguments`` is a JSON string, streamed tool calls arrive as ``delta.tool_calls``
with an ``index``, the finish reason is ``tool_calls`` or ``stop``, and usage is reported (in streams only
when ``stream_options.include_usage`` is set). It listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted assistant reply: text, tool calls, or an HTTP error status."""

    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    message: str = "scripted error"  # of an error status
    delay_s: float = 0.0
    cut_off: bool = False  # stopped at the token limit: the last tool call's arguments end mid-JSON


def text(content: str) -> Reply:
    return Reply(content=content)


def tools(*calls: tuple[str, dict[str, Any]], content: str | None = None) -> Reply:
    return Reply(content=content, tool_calls=list(calls))


def _tokens(text_: str) -> int:
    return max(1, len(text_.split()))


class FakeVllm:
    """Start with ``with FakeVllm() as server:``; ``server.base_url`` ends in ``/v1``."""

    def __init__(self, model: str = "Qwen/Qwen2.5-7B-Instruct") -> None:
        self.model = model
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # ---- lifecycle ----
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeVllm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeVllm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- script ----
    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def _next(self) -> Reply | None:
        with self._lock:
            return self.replies.popleft() if self.replies else None

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r, p in zip(self.requests, self.paths, strict=True) if p.endswith("/chat/completions")]

    # ---- responses in vLLM's shapes ----
    def completion(self, reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
        calls = [
            {
                "id": f"chatcmpl-tool-{uuid.uuid4().hex}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for name, args in reply.tool_calls
        ]
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "tool_calls": calls}
        if not calls:
            message["content"] = reply.content or ""
        prompt = _tokens(json.dumps(request.get("messages", [])))
        completion = _tokens((reply.content or "") + json.dumps([c["function"] for c in calls]))
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else "stop",
                    "stop_reason": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    def stream_chunks(self, reply: Reply, request: dict[str, Any]) -> list[dict[str, Any]]:
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        chunks = [chunk({"role": "assistant", "content": ""})]
        if reply.content:
            words = reply.content.split(" ")
            for i, word in enumerate(words):
                chunks.append(chunk({"content": word if i == 0 else " " + word}))
        for index, (name, args) in enumerate(reply.tool_calls):
            chunks.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "id": f"chatcmpl-tool-{uuid.uuid4().hex}",
                                "type": "function",
                                "index": index,
                                "function": {"name": name},
                            }
                        ]
                    }
                )
            )
            arguments = json.dumps(args)
            if reply.cut_off and index == len(reply.tool_calls) - 1:
                arguments = arguments[: len(arguments) * 2 // 3]
            step = max(1, len(arguments) // 3)
            for start in range(0, len(arguments), step):
                piece = arguments[start : start + step]
                chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        finish = "length" if reply.cut_off else "tool_calls" if reply.tool_calls else "stop"
        chunks.append(chunk({"content": ""}, finish))
        if (request.get("stream_options") or {}).get("include_usage"):
            full = self.completion(reply, request)
            chunks.append(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": self.model,
                    "choices": [],
                    "usage": full["usage"],
                }
            )
        return chunks

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                server.paths.append(self.path)
                server.requests.append({})
                if self.path.rstrip("/").endswith("/v1/models"):
                    self._json(
                        200,
                        {
                            "object": "list",
                            "data": [
                                {
                                    "id": server.model,
                                    "object": "model",
                                    "owned_by": "vllm",
                                    "max_model_len": 32768,
                                }
                            ],
                        },
                    )
                else:
                    self._json(404, {"object": "error", "message": f"not found: {self.path}"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                server.paths.append(self.path)
                server.requests.append(request)
                if not self.path.rstrip("/").endswith("/v1/chat/completions"):
                    self._json(404, {"object": "error", "message": f"not found: {self.path}"})
                    return
                reply = server._next()
                if reply is None:
                    self._json(
                        500,
                        {
                            "object": "error",
                            "type": "InternalServerError",
                            "message": "fake vLLM: no scripted reply left",
                            "code": 500,
                        },
                    )
                    return
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    self._json(
                        reply.status,
                        {
                            "object": "error",
                            "type": "BadRequestError",
                            "message": reply.message,
                            "code": reply.status,
                        },
                    )
                    return
                if not request.get("stream"):
                    self._json(200, server.completion(reply, request))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                for c in server.stream_chunks(reply, request):
                    self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
