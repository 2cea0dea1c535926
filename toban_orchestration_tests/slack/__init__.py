"""Tests of the Slack domain: the Web API client and sync, the export import, the Events API
receiver and applier, the Slack assets and admin jobs, and the local Slack server itself."""
