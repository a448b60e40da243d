"""Persistence: SQLAlchemy models, engine and sessions, migrations, CSV import, bulk writes, the audit log."""
