"""A local OpenAI-compatible chat completions server, for tests that use the real ``openai`` SDK.

Why a real HTTP server instead of mocks: openai 3.x sends requests through ``httpx2``, so
transport-level mocks break between versions (shared/STACK_NOTES.md). Only a server exercises
what the SDK really sends (``POST {base_url}/chat/completions`` with a Bearer key), its retries
(429 honouring ``Retry-After``, 408/409/5xx, timeouts and dropped connections), its timeouts and
its mapping of statuses to exception types.

What it imitates:

* OpenAI: ``POST /v1/chat/completions`` (non-streaming) and ``GET /v1/models``; OpenAI's error
  envelope; the 400s a careless client gets from the real API (no ``model``/``messages``, a
  ``json_schema`` without ``name``, ``json_object`` without the word "json" in the messages,
  ``temperature`` outside [0, 2], ``max_tokens`` below 1).
* A model: a reply longer than the request's ``max_tokens`` (counted by ``estimate_tokens``)
  is cut there and reported with ``finish_reason: "length"``, as a real server does, unless
  ``enforce_max_tokens=False``. Replies are never shaped to fit: what the responder writes is
  what gets counted.
* llama.cpp's server when ``json_schema_supported=False``: HTTP 500 with its error body for
  ``response_format.type == "json_schema"``, while ``json_object`` (optionally with ``schema``)
  works and needs no "json" in the prompt.

Answers come from, in order: the queue (``enqueue``), the ``responder`` callable, the default
content (``"{}"``). Faults are served from the same queue, once each, in order.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, cast
from urllib.parse import urlsplit

from openai import OpenAI

from ..http_base import LocalHTTPServer, LocalRequestHandler
from .protocol import (
    Answer,
    Fault,
    FinishReason,
    JSONDict,
    Outcome,
    ParsedRequest,
    RecordedRequest,
    Reply,
    Responder,
    completion_body,
    cut_to_tokens,
    error_body,
    estimate_tokens,
    json_dumps,
    llama_cpp_error_body,
    schema_example,
)

DEFAULT_API_KEY: Final = "test-key"
DEFAULT_MODELS: Final = ("fake-model",)
DEFAULT_CONTENT: Final = "{}"

LLAMA_CPP_SCHEMA_ERROR: Final = (
    'response_format type must be one of "text" or "json_object", but got: {type}'
)
"""llama.cpp server's message (HTTP 500) for a response_format type it does not support."""

_REDACTED: Final = "<redacted>"


@dataclass(frozen=True)
class _Response:
    """What a handler sends: a status, a JSON body and extra headers, or nothing (``drop``)."""

    status: int
    body: JSONDict | None
    outcome: Outcome
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    drop: bool = False


class FakeLLMServer(LocalHTTPServer[RecordedRequest]):
    """An OpenAI-compatible server on 127.0.0.1 (a free port) answering from a background thread.

    ``api_key`` is the key requests must send as ``Authorization: Bearer <key>`` (``None``
    accepts any request). ``models`` is what ``GET /v1/models`` lists; chat requests may name
    any model and it is echoed back. ``json_schema_supported=False`` imitates llama.cpp's
    server. Everything that tests observe (``requests``, ``counts``, ``errors``) is guarded by a
    lock: the SDK and the code under test may call from several threads.
    """

    thread_name: ClassVar[str] = "fake-llm-server"
    base_path: ClassVar[str] = "/v1"
    # The SDK keeps connections alive in its pool: an idle handler thread would otherwise wait
    # on one until the client is garbage collected.
    ends_connections_at_stop: ClassVar[bool] = True

    def __init__(
        self,
        *,
        api_key: str | None = DEFAULT_API_KEY,
        json_schema_supported: bool = True,
        models: Sequence[str] = DEFAULT_MODELS,
        default_content: str = DEFAULT_CONTENT,
        enforce_max_tokens: bool = True,
        responder: Responder | None = None,
    ) -> None:
        super().__init__(_Handler)
        self.api_key = api_key
        self.models = tuple(models)
        self.json_schema_supported = json_schema_supported
        self.default_content = default_content
        self.enforce_max_tokens = enforce_max_tokens
        self.responder: Responder | None = responder
        """Answers chat requests the queue does not; see ``Responder``. Assign freely."""
        self._initial = (json_schema_supported, default_content, enforce_max_tokens, responder)
        self._queue: list[Answer] = []
        self._counts: Counter[str] = Counter()
        self._errors: list[str] = []
        self._ids = itertools.count(1)

    def client(
        self, *, max_retries: int = 0, timeout: float = 10.0, api_key: str | None = None
    ) -> OpenAI:
        """A real ``openai.OpenAI`` client for this server.

        Defaults differ from the SDK's on purpose: no retries and a 10 s timeout, so a test
        fails fast unless it asks for the SDK's retry behaviour.
        """
        key = api_key if api_key is not None else (self.api_key or DEFAULT_API_KEY)
        return OpenAI(base_url=self.base_url, api_key=key, max_retries=max_retries, timeout=timeout)

    # Scripting -----------------------------------------------------------------------------

    def enqueue(self, *answers: Answer) -> None:
        """Queue answers for the next chat requests, in order; a ``str`` is a normal reply."""
        with self._lock:
            self._queue.extend(answers)

    @property
    def queued(self) -> int:
        """How many queued answers are still unconsumed."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget requests, counts, errors and the queue; restore the constructor's settings.

        Lets one server serve many tests (a module-scoped fixture) without leaking state.
        """
        with self._lock:
            self._queue.clear()
            self._request_log.clear()
            self._counts.clear()
            self._errors.clear()
        (
            self.json_schema_supported,
            self.default_content,
            self.enforce_max_tokens,
            self.responder,
        ) = self._initial

    # Observability -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), in arrival order, with its outcome."""
        return self.request_log

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/chat/completions`` requests among ``requests``."""
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    @property
    def outcomes(self) -> list[Outcome]:
        """The outcome of every request so far, in order: compact to assert on."""
        return [request.outcome for request in self.requests]

    @property
    def counts(self) -> dict[str, int]:
        """Requests per ``Outcome`` so far (a copy; absent outcomes are absent, not 0)."""
        with self._lock:
            return dict(self._counts)

    def count(self, outcome: Outcome) -> int:
        with self._lock:
            return self._counts[outcome]

    @property
    def errors(self) -> list[str]:
        """Tracebacks of exceptions inside the server (a raising responder, a server bug).

        Tests should assert this is empty: such an exception reaches the client only as a 500.
        """
        with self._lock:
            return list(self._errors)

    # Request handling (called from handler threads) -----------------------------------------

    def _record(self, request: ParsedRequest, outcome: Outcome) -> None:
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=request.headers,
            body=request.body,
            outcome=outcome,
        )
        with self._lock:
            self._request_log.append(recorded)
            self._counts[outcome] += 1

    def _record_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)

    def _next_queued(self) -> Answer | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    def _handle(
        self, request: ParsedRequest, raw_body: bytes, authorization: str | None
    ) -> _Response:
        """Route one request and decide the answer; recording happens here, before any hang.

        ``authorization`` is the raw header value: checked here and never stored.
        """
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            response = self._unauthorized(request)
        else:
            response = self._route(request, raw_body)
        self._record(request, response.outcome)
        return response

    def _route(self, request: ParsedRequest, raw_body: bytes) -> _Response:
        path = request.path.rstrip("/")
        if request.method == "POST" and path == "/v1/chat/completions":
            return self._chat(request, raw_body)
        if request.method == "GET" and path == "/v1/models":
            data = [_model_object(name) for name in self.models]
            return _Response(200, {"object": "list", "data": data}, "models")
        if request.method == "GET" and path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            if name in self.models:
                return _Response(200, _model_object(name), "models")
            message = f"The model '{name}' does not exist or you do not have access to it."
            body = error_body(message, "invalid_request_error", code="model_not_found")
            return _Response(404, body, "not_found")
        message = f"Invalid URL ({request.method} {request.path})"
        return _Response(404, error_body(message, "invalid_request_error"), "not_found")

    def _unauthorized(self, request: ParsedRequest) -> _Response:
        if "authorization" not in request.headers:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return _Response(401, error_body(message, "invalid_request_error"), "unauthorized")
        message = "Incorrect API key provided (fake LLM server)."
        body = error_body(message, "invalid_request_error", code="invalid_api_key")
        return _Response(401, body, "unauthorized")

    def _chat(self, request: ParsedRequest, raw_body: bytes) -> _Response:
        rejection = self._validate(request, raw_body)
        if rejection is not None:
            return rejection
        queued = self._next_queued()
        try:
            if queued is not None:
                return self._answer(request, queued, from_queue=True)
            responder = self.responder
            if responder is not None:
                return self._answer(request, responder(request), from_queue=False)
            return self._answer(request, self.default_content, from_queue=False)
        except Exception:
            self._record_error(traceback.format_exc())
            message = "The responder raised an exception (fake LLM server); see server.errors."
            return _Response(500, error_body(message, "server_error"), "internal_error")

    def _validate(self, request: ParsedRequest, raw_body: bytes) -> _Response | None:
        """The 400s (and llama.cpp's 500) that the real servers give before any generation."""
        body = request.body
        if body is None:
            try:
                json.loads(raw_body)
            except ValueError:
                return _bad_request("We could not parse the JSON body of your request.")
            return _bad_request("The request body must be a JSON object.")
        if not request.model:
            return _bad_request("you must provide a model parameter", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad_request("Missing required parameter: 'messages'.", param="messages")
        if body.get("stream"):
            return _bad_request("The fake LLM server does not stream; send stream=false.", "stream")
        temperature = body.get("temperature")
        if temperature is not None and not (
            isinstance(temperature, int | float) and 0 <= temperature <= 2
        ):
            message = f"Invalid 'temperature': expected a number in [0, 2], got {temperature!r}."
            return _bad_request(message, param="temperature")
        for key in ("max_tokens", "max_completion_tokens"):
            value = body.get(key)
            if value is not None and not (isinstance(value, int) and value >= 1):
                return _bad_request(f"Invalid '{key}': expected an integer >= 1.", param=key)
        return self._validate_response_format(request)

    def _validate_response_format(self, request: ParsedRequest) -> _Response | None:
        if "response_format" not in (request.body or {}):
            return None
        response_format = request.response_format
        kind = request.response_format_type
        if response_format is None or kind is None:
            return _bad_request("Invalid 'response_format': expected an object with a 'type'.")
        if not self.json_schema_supported:
            if kind in ("text", "json_object"):
                return None
            body = llama_cpp_error_body(LLAMA_CPP_SCHEMA_ERROR.format(type=kind))
            return _Response(500, body, "schema_unsupported")
        if kind == "json_schema":
            wrapper = response_format.get("json_schema")
            if not isinstance(wrapper, dict) or not isinstance(wrapper.get("name"), str):
                message = "Missing required parameter: 'response_format.json_schema.name'."
                return _bad_request(message, param="response_format.json_schema.name")
            return None
        if kind == "json_object":
            if "json" not in request.prompt_text.lower():
                message = (
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'."
                )
                return _bad_request(message, param="messages")
            return None
        if kind == "text":
            return None
        message = (
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', "
            "and 'json_schema'."
        )
        return _bad_request(message, param="response_format.type")

    def _answer(self, request: ParsedRequest, answer: Answer, *, from_queue: bool) -> _Response:
        if isinstance(answer, str):
            return self._completion(request, Reply(content=answer))
        if isinstance(answer, Reply):
            return self._completion(request, answer)
        return self._fault(request, answer, from_queue=from_queue)

    def _fallback_reply(self, request: ParsedRequest, *, from_queue: bool) -> Reply:
        """What a queued fault that needs content uses: the responder's answer or the default.

        A responder that itself returned the fault gets the default, never a second call.
        """
        responder = self.responder
        if from_queue and responder is not None:
            answer = responder(request)
            if isinstance(answer, str):
                return Reply(content=answer)
            if isinstance(answer, Reply):
                return answer
        return Reply(content=self.default_content)

    def _fault(self, request: ParsedRequest, fault: Fault, *, from_queue: bool) -> _Response:
        if fault.kind == "rate_limited":
            return _Response(
                fault.status,
                error_body(fault.message, fault.error_type, code=fault.code),
                "rate_limited",
                headers=_retry_headers(fault),
            )
        if fault.kind == "http_error":
            outcome: Outcome = "server_error" if fault.status >= 500 else "http_error"
            return _Response(
                fault.status,
                error_body(fault.message, fault.error_type, code=fault.code),
                outcome,
                headers=_retry_headers(fault),
            )
        if fault.kind == "drop":
            return _Response(0, None, "drop", drop=True)
        if fault.kind == "hang":
            reply = fault.then or self._fallback_reply(request, from_queue=from_queue)
            answered = self._completion(request, reply)
            return _Response(200, answered.body, "hang", delay=fault.seconds)
        if fault.kind == "truncated":
            full = (
                fault.content
                if fault.content is not None
                else self._fallback_reply(request, from_queue=from_queue).content
            )
            keep = fault.keep_chars if fault.keep_chars is not None else len(full) // 2
            keep = max(0, min(keep, len(full) - 1)) if full else 0
            return self._completion(
                request, Reply(content=full[:keep], finish_reason="length"), outcome="truncated"
            )
        if fault.kind == "invalid_json":
            content = fault.content if fault.content is not None else ""
            return self._completion(request, Reply(content=content), outcome="invalid_json")
        if fault.kind == "empty_choices":
            body = completion_body(
                completion_id=self._completion_id(),
                created=int(time.time()),
                model=request.model,
                content=None,
                finish_reason="stop",
                prompt_tokens=request.prompt_tokens,
                completion_tokens=0,
            )
            return _Response(200, body, "empty_choices")
        raise AssertionError(f"unknown fault kind {fault.kind!r}")

    def _completion(
        self, request: ParsedRequest, reply: Reply, *, outcome: Outcome | None = None
    ) -> _Response:
        content = reply.content
        finish_reason: FinishReason = reply.finish_reason
        limit = request.max_tokens
        if self.enforce_max_tokens and limit is not None and estimate_tokens(content) > limit:
            content = cut_to_tokens(content, limit)
            finish_reason = "length"
        if outcome is None:
            outcome = "truncated" if finish_reason == "length" else "reply"
        body = completion_body(
            completion_id=self._completion_id(),
            created=int(time.time()),
            model=reply.model or request.model,
            content=content,
            finish_reason=finish_reason,
            prompt_tokens=(
                reply.prompt_tokens if reply.prompt_tokens is not None else request.prompt_tokens
            ),
            completion_tokens=(
                reply.completion_tokens
                if reply.completion_tokens is not None
                else estimate_tokens(content)
            ),
            include_usage=not reply.omit_usage,
        )
        return _Response(200, body, outcome)

    def _completion_id(self) -> str:
        with self._lock:
            number = next(self._ids)
        return f"chatcmpl-fake{number:06d}"


def schema_responder(**overrides: Any) -> Responder:
    """A responder answering every request with ``schema_example`` of its JSON schema.

    ``overrides`` replace top-level fields of the example (for an object schema), so a test can
    pin the values it asserts on. Requests without a schema get ``{}`` plus the overrides.
    """

    def respond(request: ParsedRequest) -> str:
        schema = request.json_schema
        example = schema_example(schema) if schema is not None else {}
        if isinstance(example, dict):
            example = {**example, **overrides}
        return json_dumps(example)

    return respond


def _bad_request(message: str, param: str | None = None) -> _Response:
    return _Response(400, error_body(message, "invalid_request_error", param=param), "bad_request")


def _model_object(name: str) -> JSONDict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "fake-llm-server"}


def _retry_headers(fault: Fault) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if fault.retry_after is not None:
        headers.append(("Retry-After", _number_text(fault.retry_after)))
    if fault.retry_after_ms is not None:
        headers.append(("retry-after-ms", _number_text(fault.retry_after_ms)))
    return tuple(headers)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Handler(LocalRequestHandler):
    """Answers as the OpenAI API does; bodies always sized."""

    server_version = "FakeLLMServer/1"
    timeout = 30  # an idle kept-alive connection ends after this long (or at stop())

    @property
    def fake(self) -> FakeLLMServer:
        return cast(FakeLLMServer, self.local_server)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.fake
        try:
            raw_body = self._read_body()
            request = self._parse(raw_body)
            response = fake._handle(request, raw_body, self.headers.get("Authorization"))
        except Exception:
            fake._record_error(traceback.format_exc())
            body = error_body("Fake LLM server bug; see server.errors.", "server_error")
            response = _Response(500, body, "internal_error")
        if response.drop:
            self._drop()
            return
        if response.delay > 0 and fake._stopping.wait(response.delay):
            self._drop()  # stopping: end the hang now instead of delaying teardown
            return
        self._send(response)

    def _read_body(self) -> bytes:
        if self.command == "GET":
            return b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _parse(self, raw_body: bytes) -> ParsedRequest:
        headers = {name.lower(): value for name, value in self.headers.items()}
        if "authorization" in headers:
            headers["authorization"] = _REDACTED  # presence stays visible, the key is not kept
        body: JSONDict | None = None
        if raw_body:
            try:
                decoded = json.loads(raw_body)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                body = decoded
        return ParsedRequest(
            method=self.command, path=urlsplit(self.path).path, headers=headers, body=body
        )

    def _send(self, response: _Response) -> None:
        payload = json_dumps(response.body).encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-request-id", f"req_fake_{time.monotonic_ns()}")
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up (its timeout fired)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # already closed by the client
            self.connection.shutdown(socket.SHUT_RDWR)
