"""Alembic migration scripts for the state database (run through `switchboard.store.migrate`)."""
