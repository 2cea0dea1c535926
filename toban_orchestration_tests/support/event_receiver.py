"""The signing secret of the Events API tests: Slack's documented example value, not a real one."""

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
