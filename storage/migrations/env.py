from alembic import context
from sqlmodel import SQLModel

import alerts.models  # noqa: F401 - the calendar feed tokens (migration 0004)
import storage.models  # noqa: F401 - registers the tables
import web.models  # noqa: F401 - the workbench accounts table (migration 0003)
from storage.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
