"""Serving the bot: the bolt app, the HTTP endpoint and Socket Mode.

The HTTP endpoint runs on waitress, a production WSGI server whose I/O is one asynchronous loop (a slow or
idle connection holds no thread) and whose requests are handed to a fixed pool of threads. Its limits
(:class:`HttpLimits`, defaults below) keep a client from exhausting the process:

- ``max_body_bytes`` (:data:`MAX_BODY_BYTES`, 1 MiB; Slack's payloads are a few KiB): a request announcing a
  larger ``Content-Length`` gets 413 as soon as its headers are in, before any of its body is read (a
  ``Content-Length: 1000000000`` with 3 bytes sent gets 413 at once); ``max_header_bytes``
  (:data:`MAX_HEADER_BYTES`, 64 KiB) bounds the headers the same way (431);
- ``read_timeout_s`` (:data:`READ_TIMEOUT_S`, 10 s): a connection that sends nothing for that long is
  closed (a client that stops in the middle of its request, an idle keep-alive);
- ``request_timeout_s`` (:data:`REQUEST_TIMEOUT_S`, 15 s): a request must have arrived whole within that
  time of its first byte, else its connection is closed (a "slowloris" client trickling a byte now and
  then is never idle, but never done either);
- ``max_connections`` (:data:`MAX_CONNECTIONS`, 500): open connections at most; beyond it new ones wait in
  the listen backlog until others close;
- ``threads`` (:data:`HTTP_THREADS`, 8): threads running requests (verification, bolt's listeners, which
  only acknowledge and hand over to the bot's own worker pool);
- ``cleanup_interval_s`` (:data:`CLEANUP_INTERVAL_S`, 1 s): how often the two timeouts are enforced.

In front of bolt's handler a small WSGI guard refuses, without any work (no listener, no audit), a request
whose ``X-Slack-Request-Timestamp`` is not a whole number (401, as any unverifiable request) and one whose
body is not UTF-8 (400).
"""

from __future__ import annotations

import io
import logging
import threading
import time
import urllib.error
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.slack.bot import (
    EVENTS_PATH,
    FlashSaleBot,
    SlackConfigError,
    SlackCredentials,
    SlackUnavailable,
    require_slack_bolt,
)
from assistant.slack.listeners import register_listeners

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

log = logging.getLogger(__name__)

#: Slack's Web API; tests point it elsewhere.
SLACK_API_URL = "https://slack.com/api/"
#: Seconds the start-up token check (``auth.test``) may take.
AUTH_TEST_TIMEOUT_S = 10.0

MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
READ_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 15.0
MAX_CONNECTIONS = 500
HTTP_THREADS = 8
CLEANUP_INTERVAL_S = 1.0

TOKEN_HELP = "check the token (xoxb-..., OAuth & Permissions) at api.slack.com/apps"

# The start-up check logs nothing of its own: its failure becomes one line (SlackConfigError).
_quiet = logging.getLogger(f"{__name__}.auth_test")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass(frozen=True)
class HttpLimits:
    """The limits of the HTTP endpoint (see the module's docstring)."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_header_bytes: int = MAX_HEADER_BYTES
    read_timeout_s: float = READ_TIMEOUT_S
    request_timeout_s: float = REQUEST_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS
    threads: int = HTTP_THREADS
    cleanup_interval_s: float = CLEANUP_INTERVAL_S


def check_token(client: WebClient) -> None:
    """Call ``auth.test`` with ``client``'s token; a refusal or no answer is one :class:`SlackConfigError`."""
    from slack_sdk import WebClient  # noqa: PLC0415  (optional extra: slack)
    from slack_sdk.errors import SlackApiError, SlackRequestError  # noqa: PLC0415

    probe = WebClient(
        token=client.token, base_url=client.base_url, timeout=int(AUTH_TEST_TIMEOUT_S), logger=_quiet
    )
    try:
        probe.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        raise SlackConfigError(
            f"Slack refused SLACK_BOT_TOKEN (auth.test: {error or exc}); {TOKEN_HELP}"
        ) from exc
    except (OSError, SlackRequestError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise SlackConfigError(
            f"cannot reach Slack to check SLACK_BOT_TOKEN (auth.test): {reason}; check the network and "
            f"the token at api.slack.com/apps"
        ) from exc


def build_app(
    bot: FlashSaleBot,
    credentials: SlackCredentials,
    *,
    client: WebClient | None = None,
    token_verification: bool = True,
) -> App:
    """A bolt ``App`` with the bot's listeners. ``client`` replaces the Slack Web API client (tests);
    ``token_verification`` calls ``auth.test`` at start to fail fast on a bad token or no network, with a
    one-line :class:`SlackConfigError`."""
    require_slack_bolt()
    from slack_bolt import App  # noqa: PLC0415  (optional extra: slack)
    from slack_sdk import WebClient  # noqa: PLC0415  (optional extra: slack)

    if client is None:
        client = WebClient(token=credentials.bot_token, base_url=SLACK_API_URL)
    if token_verification:
        check_token(client)
    app = App(
        name="flashsale",
        signing_secret=credentials.signing_secret,
        client=client,
        # Checked above, with a readable error; bolt's own check would log and raise a traceback.
        token_verification_enabled=False,
        # Listeners only parse, acknowledge and hand over to the bot's workers: a few threads suffice.
        listener_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="flashsale-slack"),
    )
    register_listeners(app, bot)
    return app


# ---- the HTTP endpoint -------------------------------------------------------------------------------------

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def guarded(slack: WsgiApp, path: str = EVENTS_PATH) -> WsgiApp:
    """``slack`` (bolt's WSGI handler) behind ``GET /healthz`` and the checks bolt does not survive: a
    timestamp that is not a whole number gets 401 and a body that is not UTF-8 gets 400, before bolt (no
    listener runs, nothing is audited). The body was bounded by the server's ``max_body_bytes``."""

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, route = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        if method == "GET" and route == "/healthz":
            return _plain(start_response, "200 OK", "ok")
        if method == "POST" and route == path:
            stamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
            if not (stamp.isascii() and stamp.isdigit()):
                return _plain(start_response, "401 Unauthorized", "invalid request")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                return _plain(start_response, "400 Bad Request", "the body is not UTF-8")
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return slack(environ, start_response)

    return wsgi


def _waitress_classes(request_timeout_s: float) -> Any:
    """waitress's TCP server with the request timeout added (waitress has the idle timeout only)."""
    from waitress.channel import HTTPChannel  # noqa: PLC0415  (optional extra: slack)
    from waitress.server import TcpWSGIServer  # noqa: PLC0415

    class Channel(HTTPChannel):
        request_started: float | None = None  # first byte of the request being received

        def received(self, data: bytes) -> bool:
            result = bool(super().received(data))
            if self.request is None:
                self.request_started = None
            elif self.request_started is None:
                self.request_started = time.time()
            return result

    class Server(TcpWSGIServer):
        channel_class = Channel

        def maintenance(self, now: float) -> None:
            super().maintenance(now)  # closes connections idle for channel_timeout
            cutoff = now - request_timeout_s
            for channel in list(self.active_channels.values()):
                started = getattr(channel, "request_started", None)
                if started is not None and started < cutoff and not channel.requests:
                    channel.will_close = True

    return Server


class SlackHTTPServer:
    """The endpoint's waitress server, with the stdlib's interface: ``server_port`` (the port bound, also for
    port 0), ``serve_forever()`` and, from another thread, ``shutdown()``; then ``server_close()``."""

    def __init__(self, wsgi: WsgiApp, host: str, port: int, limits: HttpLimits) -> None:
        from waitress.adjustments import Adjustments  # noqa: PLC0415  (optional extra: slack)

        self.limits = limits
        self._map: dict[int, Any] = {}
        adj = Adjustments(
            host=host,
            port=port,
            threads=limits.threads,
            connection_limit=limits.max_connections,
            channel_timeout=limits.read_timeout_s,
            cleanup_interval=limits.cleanup_interval_s,
            max_request_body_size=limits.max_body_bytes,
            max_request_header_size=limits.max_header_bytes,
            asyncore_use_poll=True,  # select() cannot watch more than 1,024 sockets
            ident="flashsale",
        )
        self.server = _waitress_classes(limits.request_timeout_s)(wsgi, map=self._map, adj=adj)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def server_port(self) -> int:
        return int(self.server.effective_port)

    def serve_forever(self) -> None:
        from waitress import wasyncore  # noqa: PLC0415  (optional extra: slack)

        self._stopped.clear()
        try:
            while not self._stop.is_set():
                wasyncore.loop(
                    timeout=self.server.adj.asyncore_loop_timeout, map=self._map, use_poll=True, count=1
                )
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (from another thread) and wait until it returned."""
        self._stop.set()
        self.server.trigger.pull_trigger()
        self._stopped.wait()

    def server_close(self) -> None:
        """Close the listening socket and every connection, and stop the request threads."""
        from waitress import wasyncore  # noqa: PLC0415  (optional extra: slack)

        self.server.task_dispatcher.shutdown()
        wasyncore.close_all(self._map)


def make_http_server(
    app: App,
    host: str = "127.0.0.1",
    port: int = 3000,
    path: str = EVENTS_PATH,
    *,
    limits: HttpLimits | None = None,
) -> SlackHTTPServer:
    """A waitress server with Slack's endpoint at ``path`` (and ``GET /healthz``) under ``limits`` (default
    :class:`HttpLimits`); port 0 picks a free port (``server.server_port``). Call ``serve_forever()`` and,
    from another thread, ``shutdown()``, then ``server_close()``."""
    require_slack_bolt()
    from slack_bolt.adapter.wsgi import SlackRequestHandler  # noqa: PLC0415  (optional extra: slack)

    try:
        import waitress  # noqa: F401, PLC0415  (optional extra: slack)
    except ImportError as exc:
        raise SlackUnavailable(
            "the Slack bot's HTTP endpoint needs waitress: pip install -e '.[slack]' "
            "(or pip install waitress)"
        ) from exc
    wsgi = guarded(SlackRequestHandler(app, path=path), path)
    return SlackHTTPServer(wsgi, host, port, limits or HttpLimits())


def run_socket_mode(app: App, app_token: str) -> None:
    """Connect to Slack over Socket Mode (no public URL needed) and serve until interrupted."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler  # noqa: PLC0415  (optional extra: slack)

    SocketModeHandler(app, app_token).start()
