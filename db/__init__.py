"""Database layer: SQLAlchemy models, engine/session helper, migrations, CSV import and demo data."""
