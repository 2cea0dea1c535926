"""The one Dagster entry point: every domain's assets, checks and resources."""

import dagster as dg

from toban_orchestration.db.assets import app_database_schema, schema_matches_models
from toban_orchestration.db.resources import AppDatabase

defs = dg.Definitions(
    assets=[app_database_schema],
    asset_checks=[schema_matches_models],
    resources={"app_database": AppDatabase()},
)
