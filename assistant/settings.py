"""One settings object for the whole application, read from the environment (and an optional .env file).

Every variable is prefixed ``FLASHSALE_`` except ``DATABASE_URL``, which follows the usual convention.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_PATH = Path("data") / "flashsale.db"


class Settings(BaseSettings):
    """Application configuration. Defaults give an embedded SQLite shop under ./data."""

    model_config = SettingsConfigDict(env_prefix="FLASHSALE_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "FLASHSALE_DATABASE_URL"),
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Overrides db_path.",
    )
    db_path: Path = Field(default=DEFAULT_DB_PATH, description="SQLite file used when DATABASE_URL is unset.")

    # ---- LLM (any OpenAI-compatible chat-completions server; vLLM by default) ----
    # Default model: Qwen2.5-7B-Instruct. At 7-8B parameters it is among the most reliable open models at
    # tool calling (it was trained on the Hermes function-calling format, which vLLM parses with
    # `--tool-call-parser hermes`), it follows JSON schemas well, has a 32k context, runs on one 24 GB GPU
    # in bf16 and is Apache-2.0 licensed. Llama-3.1-8B-Instruct (llama3_json parser) is the runner-up.
    llm_base_url: str = Field(
        default="http://127.0.0.1:8000/v1",
        description="Base URL of the OpenAI-compatible API (vLLM, llama.cpp server, Ollama's /v1).",
    )
    llm_model: str = Field(
        default="Qwen/Qwen2.5-7B-Instruct",
        description="Model name as the server knows it (vLLM: the name given to `vllm serve`).",
    )
    llm_api_key: str = Field(
        default="EMPTY", description="API key; vLLM without --api-key accepts any value."
    )
    llm_timeout_s: float = Field(default=120.0, gt=0, description="Timeout of one model request in seconds.")
    llm_connect_timeout_s: float = Field(
        default=2.0, gt=0, description="Timeout of the reachability probe (GET /models) in seconds."
    )
    llm_max_retries: int = Field(default=2, ge=0, description="Retries of a failed model request.")
    llm_temperature: float = Field(default=0.0, ge=0, description="Sampling temperature of the agent.")
    llm_max_tokens: int = Field(default=1024, gt=0, description="Most tokens the model may write per reply.")
    llm_context_tokens: int = Field(
        default=32768, gt=0, description="Context window of the served model, used to budget history."
    )
    currency: str = Field(
        default="EUR",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of the shop's currency, shown with every amount the assistant reads.",
    )
    today: dt.date | None = Field(
        default=None,
        description="Pretend today is this date (YYYY-MM-DD). Unset: the day after the shop's newest order "
        "when its data end in the past (demo shops), else the real date.",
    )
    llm_local_model: str | None = Field(
        default=None,
        description="Folder (or cached hub name) of a small transformers model to run in-process on CPU "
        "instead of calling a server (pip install -e '.[local]').",
    )
    llm_tokenizer: str | None = Field(
        default=None,
        description="Local path or cached hub name of the served model's tokenizer, to count tokens exactly.",
    )

    tool_time_limit_s: float = Field(
        default=60.0,  # the slowest tool on the demo shop (a what-if Pareto frontier) takes about 4 s
        gt=0,
        le=3600,
        description="Seconds one tool call of the assistant may run before it is stopped (nothing saved).",
    )

    # ---- Slack bot and daily draft (tokens and the signing secret come from SLACK_* variables only) ----
    slack_rate_per_minute: float = Field(
        default=6.0, gt=0, description="Questions one Slack user may ask per minute (token-bucket refill)."
    )
    slack_rate_burst: int = Field(
        default=3, ge=1, description="Questions one Slack user may ask at once before the rate applies."
    )
    slack_approvers: str = Field(
        default="",
        description="Comma-separated Slack user ids allowed to approve plans, e.g. U123,U456 (empty: none).",
    )
    slack_drafters: str = Field(
        default="",
        description="Comma-separated Slack user ids whose questions may save a draft plan, e.g. U123,U456 "
        "(empty: everyone).",
    )
    draft_dir: Path = Field(default=Path("drafts"), description="Folder of the daily plan drafts.")
    draft_at: str = Field(default="06:00", description="Time of day (HH:MM) the scheduler writes the draft.")
    draft_timezone: str = Field(default="UTC", description="Time zone of draft_at (IANA name).")
    draft_slack_channel: str | None = Field(
        default=None, description="Slack channel id the scheduled draft is posted to (unset: not posted)."
    )

    # ---- publishing approved plans to the shop ----
    publish_dir: Path = Field(default=Path("prices"), description="Folder of the published price files.")
    publish_url: str | None = Field(
        default=None, description="The shop's endpoint that receives published plans (unset: files only)."
    )
    publish_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key that signs each publish request (set it in the environment only).",
    )
    publish_retries: int = Field(default=4, ge=0, le=10, description="Retries of a failed publish request.")
    publish_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one publish request.")

    def slack_approver_ids(self) -> frozenset[str]:
        """The Slack user ids of ``slack_approvers``."""
        return _user_ids(self.slack_approvers)

    def slack_drafter_ids(self) -> frozenset[str]:
        """The Slack user ids of ``slack_drafters`` (empty: everyone may draft)."""
        return _user_ids(self.slack_drafters)

    def resolved_database_url(self) -> str:
        """The URL to connect to: DATABASE_URL if set, else the SQLite file at db_path."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.db_path}"


def _user_ids(listed: str) -> frozenset[str]:
    """The ids of a comma-separated list (``U123, U456``)."""
    return frozenset(u.strip() for u in listed.split(",") if u.strip())
