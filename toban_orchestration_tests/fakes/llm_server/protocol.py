"""The data the fake LLM server speaks: scripted replies, faults, parsed requests, response bodies.

Kept apart from the HTTP plumbing in ``server.py`` so that tests (and responders) can build and
inspect these values without a socket, and so the wire format lives in one place.

Wire format facts this module encodes (checked against openai 3.57 and OpenAI's API reference):

* A chat completion must carry ``id``, ``object: "chat.completion"``, ``created``, ``model`` and
  ``choices[].{index, message.role, finish_reason}``; ``usage`` is optional in the SDK's model
  (``ChatCompletion.usage: CompletionUsage | None``), so production code must cope with it absent.
* Errors are ``{"error": {"message", "type", "param", "code"}}``; the SDK puts the inner object in
  ``APIStatusError.body`` and the message in ``str(error)``. llama.cpp's server uses a slightly
  different inner object (``{"code": 500, "message", "type": "server_error"}``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

JSONDict: TypeAlias = dict[str, Any]

CHARS_PER_TOKEN: Final = 4
"""The token estimate's ratio: about four characters of ASCII text (English, JSON) per token;
every other character (Japanese, accents, emoji) counts as a token of its own, as real
tokenizers spend about one on each.

Deliberately not tiktoken (it downloads its encodings on first use, which fails offline, see
shared/STACK_NOTES.md). Deterministic, so tests can compute the expected ``usage`` exactly.
"""

FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]

Outcome: TypeAlias = Literal[
    "reply",  # HTTP 200 with a normal completion (scripted, responder or default content)
    "truncated",  # HTTP 200, content cut, finish_reason "length" (fault or max_tokens reached)
    "invalid_json",  # HTTP 200 whose content is not JSON (fault)
    "empty_choices",  # HTTP 200 with ``choices: []`` (fault)
    "hang",  # slept before answering, so the client's timeout could fire (fault)
    "drop",  # connection closed without an answer (fault)
    "rate_limited",  # HTTP 429 (fault)
    "server_error",  # HTTP 5xx (fault)
    "http_error",  # another injected HTTP status (fault)
    "schema_unsupported",  # HTTP 500: json_schema refused in llama.cpp mode
    "unauthorized",  # HTTP 401: missing or wrong API key
    "bad_request",  # HTTP 400: a body the real API would reject
    "not_found",  # HTTP 404: unknown path or model id
    "internal_error",  # HTTP 500: the test's responder (or the server) raised; see .errors
    "models",  # HTTP 200 answer to GET /v1/models
]

FaultKind: TypeAlias = Literal[
    "rate_limited",
    "http_error",
    "hang",
    "truncated",
    "invalid_json",
    "empty_choices",
    "drop",
]

DEFAULT_INVALID_JSON: Final = 'Sure! Here is the analysis you asked for:\n{"score": 7, "reason": '
"""What a chatty model says instead of JSON: prose, then JSON that never ends."""


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by the documented estimate: ``ceil(ascii / CHARS_PER_TOKEN)`` plus
    one per other character."""
    wide = sum(1 for char in text if not char.isascii())
    return math.ceil((len(text) - wide) / CHARS_PER_TOKEN) + wide


def cut_to_tokens(text: str, limit: int) -> str:
    """The longest start of ``text`` within ``limit`` tokens: what a model that ran into
    ``max_tokens`` had written when it was stopped."""
    low, high = 0, len(text)
    while low < high:  # estimate_tokens grows with the length of a prefix
        middle = (low + high + 1) // 2
        if estimate_tokens(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one chat message, whether ``content`` is a string or a list of parts.

    Non-text parts (images, audio) count as no text; the fake server only reasons about text.
    """
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return "".join(parts)
    return ""


@dataclass(frozen=True)
class Reply:
    """One scripted answer: HTTP 200 with this content.

    ``prompt_tokens``/``completion_tokens`` override the estimate (for tests about cost
    accounting); ``omit_usage`` leaves ``usage`` out entirely, as some compatible servers do.
    """

    content: str
    finish_reason: FinishReason = "stop"
    model: str | None = None
    """The model name to report; ``None`` echoes the requested model."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    omit_usage: bool = False


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed once from the queue (or returned by a responder).

    Build them with the class methods; the fields are the union of what the kinds need.
    """

    kind: FaultKind
    status: int = 200
    message: str = ""
    error_type: str = ""
    code: str | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    seconds: float = 0.0
    content: str | None = None
    keep_chars: int | None = None
    then: Reply | None = None

    @classmethod
    def rate_limited(
        cls,
        retry_after: float | None = 0,
        *,
        retry_after_ms: float | None = None,
        message: str | None = None,
    ) -> Fault:
        """HTTP 429 with ``Retry-After`` (and ``retry-after-ms`` if given) and OpenAI's body.

        openai 3.x only honours a server delay in (0, 120] seconds; ``Retry-After: 0`` makes it
        fall back to its own backoff (0.5 s minus up to 25 % jitter for the first retry), and a
        delay above 120 s makes it give up at once. A fractional ``retry_after`` is sent as a
        float string, which the SDK accepts, so tests can retry after a few milliseconds.
        """
        return cls(
            "rate_limited",
            status=429,
            message=message
            or "Rate limit reached for requests. Please try again later (fake LLM server).",
            error_type="requests",
            code="rate_limit_exceeded",
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
        )

    @classmethod
    def server_error(cls, status: int = 500, *, message: str | None = None) -> Fault:
        """An HTTP 5xx with OpenAI's body; the SDK retries every 5xx."""
        if status < 500:
            raise ValueError(f"server_error needs a 5xx status, not {status}")
        default = (
            "The server is overloaded or not ready yet."
            if status == 503
            else "The server had an error while processing your request. Sorry about that!"
        )
        return cls(
            "http_error", status=status, message=message or default, error_type="server_error"
        )

    @classmethod
    def unavailable(cls) -> Fault:
        """HTTP 503, what an overloaded OpenAI or a loading llama.cpp model answers."""
        return cls.server_error(503)

    @classmethod
    def http_error(
        cls,
        status: int,
        *,
        message: str = "Injected error (fake LLM server).",
        error_type: str = "invalid_request_error",
        code: str | None = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Any other HTTP error status (400, 403, 408, 409, ...) with an OpenAI-style body."""
        return cls(
            "http_error",
            status=status,
            message=message,
            error_type=error_type,
            code=code,
            retry_after=retry_after,
        )

    @classmethod
    def hang(cls, seconds: float, *, then: Reply | None = None) -> Fault:
        """Sleep ``seconds`` before answering, so a shorter client timeout fires.

        After the sleep the server answers with ``then``, or what the responder (or the default)
        gives. The sleep ends early when the server stops, so a hang never delays teardown.
        """
        return cls("hang", seconds=seconds, then=then)

    @classmethod
    def truncated(cls, content: str | None = None, *, keep_chars: int | None = None) -> Fault:
        """HTTP 200, ``finish_reason: "length"``, the content cut short.

        The uncut content is ``content`` or what the responder (or the default) would answer;
        it keeps ``keep_chars`` characters, by default half of it (at least one character
        removed), which is what a model that ran into ``max_tokens`` mid-JSON looks like.
        """
        return cls("truncated", content=content, keep_chars=keep_chars)

    @classmethod
    def invalid_json(cls, content: str = DEFAULT_INVALID_JSON) -> Fault:
        """HTTP 200, ``finish_reason: "stop"``, with content that is not JSON."""
        return cls("invalid_json", content=content)

    @classmethod
    def empty_choices(cls) -> Fault:
        """HTTP 200 with ``choices: []``, which some compatible servers send on internal errors."""
        return cls("empty_choices")

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without answering; the SDK retries, then raises
        ``APIConnectionError``."""
        return cls("drop")


@dataclass(frozen=True)
class ParsedRequest:
    """One HTTP request as the server understood it; what a responder receives.

    ``headers`` has lower-case names; the ``authorization`` value is replaced by
    ``"<redacted>"`` so recorded requests never hold a key (present or absent stays visible).
    ``body`` is the decoded JSON body, or ``None`` for a GET or a body that is not JSON.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: JSONDict | None

    @property
    def model(self) -> str:
        """The requested model ("" if none)."""
        value = (self.body or {}).get("model")
        return value if isinstance(value, str) else ""

    @property
    def messages(self) -> list[JSONDict]:
        """The chat messages as sent (``[]`` if none)."""
        value = (self.body or {}).get("messages")
        if not isinstance(value, list):
            return []
        return [item for item in value if isinstance(item, dict)]

    @property
    def response_format(self) -> JSONDict | None:
        """The ``response_format`` object, or ``None`` when the request has none."""
        value = (self.body or {}).get("response_format")
        return value if isinstance(value, dict) else None

    @property
    def response_format_type(self) -> str | None:
        """``"text"``, ``"json_object"``, ``"json_schema"``, ... or ``None``."""
        value = (self.response_format or {}).get("type")
        return value if isinstance(value, str) else None

    @property
    def json_schema(self) -> JSONDict | None:
        """The JSON Schema the answer must follow, wherever the request put it.

        ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` (OpenAI) or
        ``{"type": "json_object", "schema": {...}}`` (llama.cpp's extension).
        """
        response_format = self.response_format or {}
        if response_format.get("type") == "json_schema":
            wrapper = response_format.get("json_schema")
            schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
        else:
            schema = response_format.get("schema")
        return schema if isinstance(schema, dict) else None

    @property
    def temperature(self) -> float | None:
        value = (self.body or {}).get("temperature")
        return float(value) if isinstance(value, int | float) else None

    @property
    def max_tokens(self) -> int | None:
        """``max_completion_tokens`` if given (OpenAI's current name), else ``max_tokens``."""
        body = self.body or {}
        for key in ("max_completion_tokens", "max_tokens"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    @property
    def prompt_text(self) -> str:
        """All message texts joined by newlines: handy for responders that look for keywords."""
        return "\n".join(message_text(message) for message in self.messages)

    @property
    def prompt_tokens(self) -> int:
        """The estimate the server reports: the sum of each message's ``estimate_tokens``."""
        return sum(estimate_tokens(message_text(message)) for message in self.messages)

    @property
    def retry_count(self) -> int:
        """The SDK's ``x-stainless-retry-count`` header: 0 for a first attempt."""
        try:
            return int(self.headers.get("x-stainless-retry-count", "0"))
        except ValueError:
            return 0


@dataclass(frozen=True)
class RecordedRequest(ParsedRequest):
    """A request in ``FakeLLMServer.requests``, with what the server did about it."""

    outcome: Outcome


Answer: TypeAlias = str | Reply | Fault
Responder: TypeAlias = Callable[[ParsedRequest], Answer]
"""Called (from a server thread; it must be thread-safe) for chat requests the queue does not
answer. A ``str`` is the content of a normal reply."""


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> JSONDict:
    """OpenAI's error envelope, which the SDK turns into ``APIStatusError.body``/``.message``."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def llama_cpp_error_body(message: str, status: int = 500) -> JSONDict:
    """llama.cpp server's error envelope (numeric ``code``, no ``param``)."""
    return {"error": {"code": status, "message": message, "type": "server_error"}}


def completion_body(
    *,
    completion_id: str,
    created: int,
    model: str,
    content: str | None,
    finish_reason: FinishReason,
    prompt_tokens: int,
    completion_tokens: int | None,
    include_usage: bool = True,
) -> JSONDict:
    """A non-streaming ``chat.completion`` object; ``content=None`` gives ``choices: []``."""
    choices: list[JSONDict] = []
    if content is not None:
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        )
    body: JSONDict = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_fake_llm_server",
        "choices": choices,
    }
    if include_usage:
        completion = completion_tokens if completion_tokens is not None else 0
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
    return body


def schema_example(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A small value that satisfies ``schema``: the base of a responder that answers "well".

    Covers what pydantic's ``model_json_schema()`` and hand-written schemas use: ``$ref`` into
    ``$defs``/``definitions``, ``const``, ``enum``, ``anyOf``/``oneOf``/``allOf`` (first
    branch), ``type`` (first non-null of a list), ``minimum``/``exclusiveMinimum``/``maximum``,
    ``minLength``, ``minItems`` and ``required`` plus the other listed properties. A ``default``
    wins when present. It is not a validator: exotic keywords (``pattern``, ``format``,
    ``multipleOf``) are ignored, so tests with such schemas should write their own responder.
    """
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return schema_example(_resolve_ref(ref, root), root)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combiner in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(combiner)
        if isinstance(branches, list) and branches:
            non_null = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
            return schema_example((non_null or branches)[0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {
            name: schema_example(sub, root)
            for name, sub in properties.items()
            if isinstance(sub, dict)
        }
    if kind == "array":
        items = schema.get("items")
        count = max(int(schema.get("minItems", 1)), 1)
        max_items = schema.get("maxItems")
        if isinstance(max_items, int):
            count = min(count, max_items)
        item = schema_example(items, root) if isinstance(items, dict) else "item"
        return [item for _ in range(count)]
    if kind in ("integer", "number"):
        return _number_example(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    length = int(schema.get("minLength", 0))
    text = "example"
    if len(text) < length:
        text = text + "x" * (length - len(text))
    max_length = schema.get("maxLength")
    if isinstance(max_length, int):
        text = text[:max_length]
    return text


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"schema_example resolves local references only, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, Mapping):
        raise ValueError(f"reference {ref!r} does not point to a schema")
    return node


def _number_example(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    low: float | None = None
    for key, step in (("minimum", 0.0), ("exclusiveMinimum", 1.0 if integer else 0.5)):
        value = schema.get(key)
        if isinstance(value, int | float):
            low = value + step if low is None else max(low, value + step)
    high: float | None = None
    for key, step in (("maximum", 0.0), ("exclusiveMaximum", 1.0 if integer else 0.5)):
        value = schema.get(key)
        if isinstance(value, int | float):
            high = value - step if high is None else min(high, value - step)
    number: float = 0.0
    if low is not None:
        number = max(number, low)
    if high is not None:
        number = min(number, high)
    return math.ceil(number) if integer else number


def json_dumps(value: Any) -> str:
    """Compact JSON, the way the server writes bodies and ``schema_responder`` writes content."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
