from alembic import context
from sqlmodel import SQLModel

# Every table is a storage module's (registered on SQLModel.metadata when imported):
import storage.calendar_tokens  # the calendar feed tokens (migration 0004)
import storage.models  # notices, sightings, versions, runs, scores, deliveries...
import storage.web_users  # noqa: F401 - the workbench accounts (migrations 0003, 0005)
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
