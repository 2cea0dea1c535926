"""The reader and writer of the analysis tables (slack_analysis, slack_channel_analysis,
slack_contribution) for what is built on top of the analyses: reports, charts and trends.

Each function takes a SQLAlchemy connection and returns plain rows or dataclasses, so the
rendering above it stays pure. (The analysis runner's own writes still live in `run.py`; they
move here as the layering of issue 18 goes on.)
"""
