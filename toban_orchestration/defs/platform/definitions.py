"""The platform's definitions: the app database's schema as an asset, and its check."""

import dagster as dg

from toban_orchestration.defs.platform.assets import app_database_schema, schema_matches_models

defs = dg.Definitions(assets=[app_database_schema], asset_checks=[schema_matches_models])
