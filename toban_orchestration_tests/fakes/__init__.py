"""The local servers the tests talk to instead of slack.com and a hosted model: real HTTP servers,
so that slack-sdk and the openai SDK run their own request, retry and error paths."""
