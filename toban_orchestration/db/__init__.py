"""The bottom layer under the domains: engine, embedded server, models, upserts, migrations."""
