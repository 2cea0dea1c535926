"""A fake OpenAI-compatible LLM server for tests that use the real ``openai`` client.

Typical use::

    with FakeLLMServer(api_key="test-key") as server:
        server.responder = schema_responder(score=7)  # valid JSON for the request's schema
        server.enqueue(Fault.rate_limited(retry_after=0), Reply(content='{"score": 3}'))
        client = OpenAI(base_url=server.base_url, api_key="test-key", max_retries=2, timeout=5)
        ...  # run the code under test
        assert server.outcomes == ["rate_limited", "reply", ...]
        assert not server.errors

Answers come from the queue first (``enqueue``: ``Reply``, ``Fault`` or a plain content string),
then from ``server.responder``, then ``"{}"``. ``json_schema_supported=False`` imitates
llama.cpp's server (HTTP 500 for ``response_format.type == "json_schema"``).
"""

from .protocol import (
    CHARS_PER_TOKEN,
    DEFAULT_INVALID_JSON,
    Answer,
    Fault,
    FaultKind,
    FinishReason,
    JSONDict,
    Outcome,
    ParsedRequest,
    RecordedRequest,
    Reply,
    Responder,
    cut_to_tokens,
    estimate_tokens,
    message_text,
    schema_example,
)
from .server import (
    DEFAULT_API_KEY,
    DEFAULT_CONTENT,
    DEFAULT_MODELS,
    LLAMA_CPP_SCHEMA_ERROR,
    FakeLLMServer,
    schema_responder,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_API_KEY",
    "DEFAULT_CONTENT",
    "DEFAULT_INVALID_JSON",
    "DEFAULT_MODELS",
    "LLAMA_CPP_SCHEMA_ERROR",
    "Answer",
    "FakeLLMServer",
    "Fault",
    "FaultKind",
    "FinishReason",
    "JSONDict",
    "Outcome",
    "ParsedRequest",
    "RecordedRequest",
    "Reply",
    "Responder",
    "cut_to_tokens",
    "estimate_tokens",
    "message_text",
    "schema_example",
    "schema_responder",
]
