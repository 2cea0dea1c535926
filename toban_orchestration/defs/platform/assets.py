"""The app database's schema as an asset, so that every synced table hangs off it in the lineage
graph and the UI shows which migration is applied and how big each table is."""

import dagster as dg

from toban_orchestration.db import migrations
from toban_orchestration.defs.platform.resources import AppDatabase

PLATFORM_GROUP = "platform"


@dg.asset(group_name=PLATFORM_GROUP, kinds={"postgres"})
def app_database_schema(
    context: dg.AssetExecutionContext, app_database: AppDatabase
) -> dg.MaterializeResult[None]:
    """Migrates the app database to the newest Alembic revision and reports its tables."""
    engine = app_database.engine()
    before = migrations.current_revision(engine)
    migrations.upgrade(engine)
    after = migrations.current_revision(engine)
    if before != after:
        context.log.info(f"Migrated the app database from {before} to {after}")
    estimates = migrations.table_row_estimates(engine)
    table_md = "| table | rows (estimate) |\n|---|---|\n" + "\n".join(
        f"| {name} | {rows} |" for name, rows in estimates
    )
    return dg.MaterializeResult(
        metadata={
            "alembic_revision": after,
            "migrated_from": before or "(empty database)",
            "table_count": len(estimates),
            "tables": dg.MetadataValue.md(table_md),
        }
    )


@dg.asset_check(asset=app_database_schema, blocking=True)
def schema_matches_models(app_database: AppDatabase) -> dg.AssetCheckResult:
    """Fails when the database differs from the SQLAlchemy models (a missing migration)."""
    differences = migrations.schema_differences(app_database.engine())
    return dg.AssetCheckResult(
        passed=not differences,
        metadata={
            "difference_count": len(differences),
            "differences": dg.MetadataValue.text("\n".join(map(str, differences)) or "none"),
        },
    )
