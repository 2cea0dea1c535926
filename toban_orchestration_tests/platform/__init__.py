"""Tests of the platform: the Dagster definitions and instance, the CLI, the demo, the dev
launcher, end to end and in the browser, the database (models, upserts, migrations, embedded
server) and the deployment configuration."""
