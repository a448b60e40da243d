"""One settings object for the whole application, read from the environment (and an optional .env file).

Every variable is prefixed ``FLASHSALE_`` except ``DATABASE_URL``, which follows the usual convention.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
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

    def resolved_database_url(self) -> str:
        """The URL to connect to: DATABASE_URL if set, else the SQLite file at db_path."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.db_path}"
