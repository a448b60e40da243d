"""Conversations in the database: the assistant's history per session id (a chat window, a Slack thread).

A turn's messages are appended in the turn's own transaction, beside its audit rows; the next turn, in this
process or in another one (two bot processes behind one URL, a restarted bot), reads them back. Tool results
keep their artifacts (plan proposals) in the table, so a plan shown in one message is the plan that
``save_draft_plan`` saves from the next; :meth:`ConversationStore.load` leaves the artifacts out, since the
model never sees them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from langchain_core.messages import (
    BaseMessage,
    HumanMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from db.audit import jsonable
from db.models import ConversationMessage
from tools.planning import PlanProposal

#: Most messages of a conversation read back for the next turn (older ones are summarised by nothing: the
#: context budget trims the oldest turns anyway).
MAX_MESSAGES = 200


def proposal_ids(message: BaseMessage) -> list[str]:
    """The plan proposals a tool result carries as its artifact."""
    artifact = getattr(message, "artifact", None)
    if not isinstance(artifact, dict):
        return []
    proposals = artifact.get("proposals")
    return sorted(proposals) if isinstance(proposals, dict) else []


def find_in(messages: Sequence[BaseMessage], proposal_id: str) -> PlanProposal | None:
    """The proposal ``proposal_id`` among the artifacts of ``messages`` (newest first)."""
    for message in reversed(messages):
        if isinstance(message, ToolMessage) and proposal_id in proposal_ids(message):
            assert isinstance(message.artifact, dict)
            return PlanProposal.model_validate(message.artifact["proposals"][proposal_id])
    return None


class ConversationStore:
    """The conversations of one database."""

    def __init__(self, factory: sessionmaker[Session], *, max_messages: int = MAX_MESSAGES) -> None:
        self.factory = factory
        self.max_messages = max_messages

    def load(self, session_id: str) -> list[BaseMessage]:
        """The newest messages of ``session_id`` (whole turns, oldest first), without artifacts."""
        with self.factory() as session:
            rows = session.scalars(
                select(ConversationMessage.message)
                .where(ConversationMessage.session_id == session_id)
                .order_by(ConversationMessage.id.desc())
                .limit(self.max_messages)
            ).all()
        messages = messages_from_dict(list(reversed(rows)))
        for message in messages:
            if isinstance(message, ToolMessage):
                message.artifact = None
        # Start at a question: a cut through the middle of a turn would leave tool results without calls.
        while messages and not isinstance(messages[0], HumanMessage):
            messages.pop(0)
        return messages

    def append(
        self, session: Session, session_id: str, messages: Sequence[BaseMessage], *, now: dt.datetime
    ) -> None:
        """Add ``messages`` to ``session_id`` in the caller's transaction."""
        for message in messages:
            ids = proposal_ids(message)
            session.add(
                ConversationMessage(
                    session_id=session_id[:100],
                    created_at=now,
                    role=message.type[:20],
                    message=jsonable(message_to_dict(message), max_text=10**9),
                    artifact_key=",".join(ids)[:64] or None,
                )
            )

    def find_proposal(self, session_id: str, proposal_id: str) -> PlanProposal | None:
        """A plan proposal shown earlier in ``session_id``, or None."""
        with self.factory() as session:
            rows = session.scalars(
                select(ConversationMessage.message)
                .where(
                    ConversationMessage.session_id == session_id,
                    ConversationMessage.artifact_key.contains(proposal_id),
                )
                .order_by(ConversationMessage.id.desc())
                .limit(1)
            ).all()
        return find_in(messages_from_dict(list(rows)), proposal_id)

    def reset(self, session_id: str) -> None:
        """Forget ``session_id``."""
        with self.factory.begin() as session:
            session.execute(delete(ConversationMessage).where(ConversationMessage.session_id == session_id))
