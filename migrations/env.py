"""Alembic environment: runs migrations against the URL assistant.db passes in.

Run through ``python app.py migrate`` (or ``alembic upgrade head``, which
falls back to Settings for the URL).
"""

from alembic import context
from sqlalchemy import pool

from assistant.db import make_engine
from assistant.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from assistant.config import load_settings

    return load_settings().db_url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(_url())
    engine.pool = pool.NullPool(engine.pool._creator)  # one-shot: don't keep connections
    with engine.connect() as connection:
        # render_as_batch lets ALTER TABLE work on SQLite via table copies.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
