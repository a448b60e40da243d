"""The Slack front end: app mentions, direct messages and ``/flashsale`` answered by the same assistant as
the terminal chat, and plan approval through a button limited to the configured approvers.

- :mod:`assistant.slack.bot`: the Slack-independent core (questions through the agent, rate limits,
  approvals, the audit) and the credentials;
- :mod:`assistant.slack.render`: messages and blocks (mrkdwn, the approval button, plan and draft summaries);
- :mod:`assistant.slack.listeners`: the bolt listeners;
- :mod:`assistant.slack.server`: the bolt app, the HTTP endpoint and Socket Mode.
"""

from assistant.slack.bot import (
    CHANNEL,
    COMMAND,
    EVENTS_PATH,
    HELP_TEXT,
    BotReply,
    FlashSaleBot,
    SlackConfigError,
    SlackCredentials,
    SlackUnavailable,
    post_draft,
    require_slack_bolt,
    saved_plan_id,
)
from assistant.slack.listeners import register_listeners, strip_mentions
from assistant.slack.render import APPROVE_ACTION, approval_blocks, draft_message, text_blocks, to_mrkdwn
from assistant.slack.server import build_app, make_http_server, run_socket_mode

__all__ = [
    "APPROVE_ACTION",
    "CHANNEL",
    "COMMAND",
    "EVENTS_PATH",
    "HELP_TEXT",
    "BotReply",
    "FlashSaleBot",
    "SlackConfigError",
    "SlackCredentials",
    "SlackUnavailable",
    "approval_blocks",
    "build_app",
    "draft_message",
    "make_http_server",
    "post_draft",
    "register_listeners",
    "require_slack_bolt",
    "run_socket_mode",
    "saved_plan_id",
    "strip_mentions",
    "text_blocks",
    "to_mrkdwn",
]
