# On PostgreSQL, a trigram index (pg_trgm, GIN) over the text the users search looks in, so that
# a search's LIKE '%word%' reads the index instead of every user of the tenant. The indexed
# expression is exactly the one graph/api/users.py searches (tests/test_search_index.py checks
# the planner uses it). SQLite has no trigram index for LIKE: nothing to do there.
from tortoise import migrations
from tortoise.migrations import operations as ops

from models.db import DatabaseNotReady

EXTENSION = "pg_trgm"
INDEX = (
    "CREATE INDEX app_user_search_trgm ON app_user USING gin "
    "(UPPER(CAST(\"first_name\" || ' ' || \"last_name\" || ' ' || \"username\" || ' ' || COALESCE(\"email\", '') AS VARCHAR)) "
    "gin_trgm_ops)"
)


async def _create(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    _, rows = await client.execute_query("SELECT 1 FROM pg_extension WHERE extname = $1", [EXTENSION])
    if not rows:
        # pg_trgm is a trusted extension: the database's owner, or any role with CREATE on it, may create it.
        _, allowed = await client.execute_query("SELECT has_database_privilege(current_database(), 'CREATE')")
        if not allowed[0][0]:
            raise DatabaseNotReady(
                f"the users search needs the PostgreSQL extension {EXTENSION}, and this role may not create it. "
                f"Run `CREATE EXTENSION {EXTENSION};` in this database as its owner (or a superuser), "
                "or grant this role CREATE on the database, then migrate again."
            )
        await client.execute_script(f"CREATE EXTENSION {EXTENSION}")
    await client.execute_script(INDEX)


async def _drop(apps, schema_editor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script("DROP INDEX IF EXISTS app_user_search_trgm")


class Migration(migrations.Migration):
    dependencies = [('models', '0007_webhooks')]

    initial = False

    operations = [ops.RunPython(_create, reverse_code=_drop)]
