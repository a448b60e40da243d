"""Serving the bot: the bolt app, the HTTP endpoint and Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from assistant.slack.bot import EVENTS_PATH, FlashSaleBot, SlackCredentials, require_slack_bolt
from assistant.slack.listeners import register_listeners

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

log = logging.getLogger(__name__)


def build_app(
    bot: FlashSaleBot,
    credentials: SlackCredentials,
    *,
    client: WebClient | None = None,
    token_verification: bool = True,
) -> App:
    """A bolt ``App`` with the bot's listeners. ``client`` replaces the Slack Web API client (tests);
    ``token_verification`` calls ``auth.test`` at start to fail fast on a bad token."""
    require_slack_bolt()
    from slack_bolt import App  # noqa: PLC0415  (optional extra: slack)

    app = App(
        name="flashsale",
        token=None if client is not None else credentials.bot_token,
        signing_secret=credentials.signing_secret,
        client=client,
        token_verification_enabled=token_verification,
        # Listeners only parse, acknowledge and hand over to the bot's workers: a few threads suffice.
        listener_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="flashsale-slack"),
    )
    register_listeners(app, bot)
    return app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops connections of a burst (a 1 s TCP retry each)


class _LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
        log.info("%s %s", self.address_string(), format % args)


def make_http_server(
    app: App, host: str = "127.0.0.1", port: int = 3000, path: str = EVENTS_PATH
) -> WSGIServer:
    """A threaded WSGI server with Slack's endpoint at ``path`` (and ``GET /healthz``); port 0 picks a free
    port (``server.server_port``). Call ``serve_forever()`` and, from another thread, ``shutdown()``."""
    require_slack_bolt()
    from slack_bolt.adapter.wsgi import SlackRequestHandler  # noqa: PLC0415  (optional extra: slack)

    slack = SlackRequestHandler(app, path=path)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok"]
        return slack(environ, start_response)

    return make_server(host, port, wsgi, server_class=_ThreadingWSGIServer, handler_class=_LoggingHandler)


def run_socket_mode(app: App, app_token: str) -> None:
    """Connect to Slack over Socket Mode (no public URL needed) and serve until interrupted."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler  # noqa: PLC0415  (optional extra: slack)

    SocketModeHandler(app, app_token).start()
