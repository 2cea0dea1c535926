"""Tests of the analyses: windows, scoring, the LLM path (and the local LLM server), the offline
analyzer, reports, trends and their assets."""
