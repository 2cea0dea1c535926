"""The trigger that maintains `updated_at` on every table that has one.

A trigger rather than SQLAlchemy's `onupdate`, so that bulk upserts and plain SQL keep the
column right too. It only moves when a column really changed: re-syncing an unchanged message
leaves its `updated_at` alone, which keeps "last changed" meaningful.
"""

from alembic.operations import Operations

FUNCTION_NAME = "toban_touch_updated_at"

CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION_NAME}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$
"""


def trigger_name(table: str) -> str:
    return f"trg_{table}_updated_at"


def create_function(op: Operations) -> None:
    op.execute(CREATE_FUNCTION)


def drop_function(op: Operations) -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION_NAME}()")


def create_trigger(op: Operations, table: str) -> None:
    op.execute(
        f"CREATE TRIGGER {trigger_name(table)} BEFORE UPDATE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION_NAME}()"
    )
