"""Tests of access and privacy: who may see what, pseudonyms, retention, erasure, tokens at rest
and in rotation, and the scan for leaked secrets."""
