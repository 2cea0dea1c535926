"""The Dagster layer: one package per domain holding its assets, resources, partitions, jobs,
schedules, sensors and checks side by side; `toban_orchestration.definitions` merges them. The
domains below (slack, analysis, access, privacy, security) never import Dagster."""
