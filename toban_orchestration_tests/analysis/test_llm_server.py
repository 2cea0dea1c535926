"""The fake LLM server, checked through the real ``openai`` client.

LLM tests trust this server as the stand-in for OpenAI and llama.cpp, so these tests pin down
that every answer it gives parses in the SDK, that each fault surfaces as the exception (or the
retry) the production code will see, and that requests are recorded faithfully.

Retry tests replace the SDK's ``time.sleep`` with a recorder: they stay fast and can assert the
exact delay the SDK chose (which is part of what the production code must know).
"""

import json
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, Field

from toban_orchestration_tests.fakes.llm_server import (
    DEFAULT_API_KEY,
    LLAMA_CPP_SCHEMA_ERROR,
    FakeLLMServer,
    Fault,
    ParsedRequest,
    Reply,
    cut_to_tokens,
    estimate_tokens,
    schema_example,
    schema_responder,
)

MODEL = "gpt-test"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You score Slack conversations. Answer in JSON."},
    {"role": "user", "content": "alice: shipped the release\nbob: thanks!"},
]
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "reason": {"type": "string", "maxLength": 200},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "score", "schema": SCORE_SCHEMA, "strict": True},
}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running
        assert not running.errors, running.errors[0]


@pytest.fixture
def sdk_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Records the SDK's retry delays instead of sleeping them."""
    delays: list[float] = []
    # The SDK calls time.sleep (a module global) between attempts; nothing else here sleeps.
    monkeypatch.setattr("openai._base_client.time.sleep", delays.append)
    return delays


def ask(client: OpenAI, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "model": MODEL,
        "messages": MESSAGES,
        "response_format": JSON_SCHEMA_FORMAT,
        "temperature": 0,
        "max_tokens": 300,
        **overrides,
    }
    return client.chat.completions.create(**arguments)


def test_base_url_ends_in_v1_and_sdk_posts_to_chat_completions(server: FakeLLMServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    ask(server.client())
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-stainless-retry-count"] == "0"


def test_scripted_reply_parses_with_usage(server: FakeLLMServer) -> None:
    server.enqueue(Reply(content='{"score": 8, "reason": "shipped"}'))
    completion = ask(server.client())
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert json.loads(choice.message.content) == {"score": 8, "reason": "shipped"}
    assert choice.finish_reason == "stop"
    prompt = sum(math.ceil(len(str(m["content"])) / 4) for m in MESSAGES)
    assert completion.usage.prompt_tokens == prompt
    assert completion.usage.completion_tokens == estimate_tokens(choice.message.content)
    assert completion.usage.total_tokens == prompt + completion.usage.completion_tokens
    assert server.queued == 0


def test_queue_is_consumed_in_order_before_the_responder(server: FakeLLMServer) -> None:
    server.responder = lambda request: '"responder"'
    server.enqueue('"first"', Reply(content='"second"', model="other-model"))
    client = server.client()
    answers = [ask(client) for _ in range(3)]
    assert [a.choices[0].message.content for a in answers] == ['"first"', '"second"', '"responder"']
    assert answers[1].model == "other-model"


def test_responder_sees_the_parsed_request(server: FakeLLMServer) -> None:
    seen: list[ParsedRequest] = []

    def respond(request: ParsedRequest) -> str:
        seen.append(request)
        assert request.json_schema is not None
        return json.dumps({"score": 5, "reason": "ok"})

    server.responder = respond
    completion = ask(server.client(), temperature=0.2, max_tokens=123)
    assert json.loads(completion.choices[0].message.content)["score"] == 5
    [request] = seen
    assert request.model == MODEL
    assert [m["role"] for m in request.messages] == ["system", "user"]
    assert request.response_format == JSON_SCHEMA_FORMAT
    assert request.response_format_type == "json_schema"
    assert request.json_schema == SCORE_SCHEMA
    assert request.temperature == 0.2
    assert request.max_tokens == 123
    assert "shipped the release" in request.prompt_text


def test_default_content_and_omitted_usage(server: FakeLLMServer) -> None:
    client = server.client()
    assert ask(client).choices[0].message.content == "{}"
    server.enqueue(Reply(content="{}", omit_usage=True, prompt_tokens=1))
    assert ask(client).usage is None


def test_schema_responder_answers_a_pydantic_schema_validly(server: FakeLLMServer) -> None:
    class Person(BaseModel):
        user_id: str = Field(min_length=9, max_length=12)
        role: Literal["author", "reviewer"]

    class Analysis(BaseModel):
        score: int = Field(ge=1, le=10)
        confidence: float = Field(gt=0, le=1)
        people: list[Person] = Field(min_length=2, max_length=5)
        summary: str | None
        tags: list[str]

    schema = Analysis.model_json_schema()
    assert Analysis.model_validate(schema_example(schema))
    server.responder = schema_responder(summary="pinned")
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "analysis", "schema": schema},
    }
    content = ask(server.client(), response_format=response_format).choices[0].message.content
    analysis = Analysis.model_validate_json(content)
    assert analysis.summary == "pinned"
    assert len(analysis.people) == 2


def test_429_with_retry_after_0_is_retried_after_the_sdk_backoff(
    server: FakeLLMServer, sdk_sleeps: list[float]
) -> None:
    server.enqueue(Fault.rate_limited(retry_after=0), '{"score": 1, "reason": "x"}')
    completion = ask(server.client(max_retries=2))
    assert json.loads(completion.choices[0].message.content)["score"] == 1
    assert server.outcomes == ["rate_limited", "reply"]
    assert [r.retry_count for r in server.requests] == [0, 1]
    # Retry-After: 0 is not honoured (only 0 < delay <= 120 is): the SDK's own backoff applies.
    [delay] = sdk_sleeps
    assert 0.375 <= delay <= 0.5


def test_fractional_retry_after_is_honoured(server: FakeLLMServer, sdk_sleeps: list[float]) -> None:
    server.enqueue(Fault.rate_limited(retry_after=0.01), Fault.rate_limited(retry_after_ms=20))
    ask(server.client(max_retries=2))
    assert sdk_sleeps == [0.01, 0.02]
    assert server.counts == {"rate_limited": 2, "reply": 1}


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_then_success_is_retried(server: FakeLLMServer, status: int) -> None:
    # Really sleeps (about 0.4 s): one end-to-end retry without the sleep recorder.
    server.enqueue(Fault.server_error(status))
    started = time.monotonic()
    assert ask(server.client(max_retries=2)).choices[0].message.content == "{}"
    assert time.monotonic() - started >= 0.375
    assert server.outcomes == ["server_error", "reply"]


def test_retries_exhausted_raise_after_max_retries_plus_one_attempts(
    server: FakeLLMServer, sdk_sleeps: list[float]
) -> None:
    server.enqueue(*[Fault.unavailable()] * 3)
    with pytest.raises(openai.InternalServerError):
        ask(server.client(max_retries=2))
    assert server.count("server_error") == 3
    assert len(sdk_sleeps) == 2


def test_faults_without_retries_raise_the_sdk_exception_types(server: FakeLLMServer) -> None:
    client = server.client(max_retries=0)
    server.enqueue(Fault.rate_limited(retry_after=3))
    with pytest.raises(openai.RateLimitError) as rate_limited:
        ask(client)
    assert rate_limited.value.status_code == 429
    assert rate_limited.value.response.headers["retry-after"] == "3"
    assert rate_limited.value.code == "rate_limit_exceeded"
    for status in (500, 503):
        server.enqueue(Fault.server_error(status))
        with pytest.raises(openai.InternalServerError) as server_error:
            ask(client)
        assert server_error.value.status_code == status
    server.enqueue(Fault.http_error(400, message="bad"))
    with pytest.raises(openai.BadRequestError, match="bad"):
        ask(client)
    server.enqueue(Fault.drop())
    with pytest.raises(openai.APIConnectionError):
        ask(client)
    assert server.outcomes == [
        "rate_limited",
        "server_error",
        "server_error",
        "http_error",
        "drop",
    ]


def test_hang_longer_than_the_timeout_raises_api_timeout_error(server: FakeLLMServer) -> None:
    server.enqueue(Fault.hang(5))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(server.client(max_retries=0, timeout=0.3))
    assert time.monotonic() - started < 3
    # The hung handler does not block other requests.
    assert ask(server.client()).choices[0].message.content == "{}"
    assert server.outcomes == ["hang", "reply"]


def test_hang_shorter_than_the_timeout_answers(server: FakeLLMServer) -> None:
    server.enqueue(Fault.hang(0.1, then=Reply(content='"late"')))
    assert ask(server.client(timeout=5)).choices[0].message.content == '"late"'


def test_stop_ends_hangs_at_once() -> None:
    with FakeLLMServer() as running:
        running.enqueue(Fault.hang(30))
        with pytest.raises(openai.APITimeoutError):
            ask(running.client(timeout=0.2))
        started = time.monotonic()
    assert time.monotonic() - started < 1.5


def test_truncated_answer_has_finish_reason_length(server: FakeLLMServer) -> None:
    full = '{"score": 4, "reason": "a long explanation"}'
    server.responder = lambda request: full
    client = server.client()
    server.enqueue(Fault.truncated(), Fault.truncated("0123456789", keep_chars=4))
    first, second = ask(client), ask(client)
    assert first.choices[0].finish_reason == "length"
    assert first.choices[0].message.content == full[: len(full) // 2]
    assert second.choices[0].message.content == "0123"
    # A reply longer than max_tokens is cut like a model running into the limit.
    cut = ask(client, max_tokens=3)
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == full[:12]
    assert cut.usage.completion_tokens == 3
    assert server.outcomes == ["truncated"] * 3


def test_max_tokens_counts_what_the_answer_says_in_any_script(server: FakeLLMServer) -> None:
    # Four ASCII characters make a token; any other character is a token of its own.
    japanese = '{"reason": "トークンを更新しました"}'
    assert estimate_tokens(japanese) == math.ceil((len(japanese) - 11) / 4) + 11
    server.responder = lambda request: japanese
    client = server.client()
    fits = ask(client, max_tokens=estimate_tokens(japanese))
    assert (fits.choices[0].finish_reason, fits.choices[0].message.content) == ("stop", japanese)
    cut = ask(client, max_tokens=8)
    assert cut.choices[0].finish_reason == "length"
    content = cut.choices[0].message.content
    assert content == cut_to_tokens(japanese, 8) == japanese[: len(content)]
    assert estimate_tokens(content) <= 8 < estimate_tokens(japanese[: len(content) + 1])
    assert cut.usage.completion_tokens == estimate_tokens(content)
    # Off, the answer is served whole whatever the limit (for tests about something else).
    server.enforce_max_tokens = False
    whole = ask(client, max_tokens=1)
    assert (whole.choices[0].finish_reason, whole.choices[0].message.content) == ("stop", japanese)


def test_invalid_json_and_empty_choices(server: FakeLLMServer) -> None:
    client = server.client()
    server.enqueue(Fault.invalid_json(), Fault.empty_choices())
    content = ask(client).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    assert ask(client).choices == []
    assert server.outcomes == ["invalid_json", "empty_choices"]


def test_llama_cpp_mode_refuses_json_schema_and_accepts_json_object(
    sdk_sleeps: list[float],
) -> None:
    with FakeLLMServer(json_schema_supported=False) as llama:
        llama.responder = schema_responder(reason="from llama")
        with pytest.raises(openai.InternalServerError, match="response_format") as refused:
            ask(llama.client(max_retries=0))
        assert refused.value.body == {
            "code": 500,
            "message": LLAMA_CPP_SCHEMA_ERROR.format(type="json_schema"),
            "type": "server_error",
        }
        # A 500 is retryable to the SDK: with its default retries it asks three times.
        with pytest.raises(openai.InternalServerError):
            ask(llama.client(max_retries=2))
        assert llama.count("schema_unsupported") == 4
        response_format = {"type": "json_object", "schema": SCORE_SCHEMA}
        content = ask(llama.client(), response_format=response_format).choices[0].message.content
        assert json.loads(content) == {"score": 1, "reason": "from llama"}
        assert llama.requests[-1].json_schema == SCORE_SCHEMA
        assert not llama.errors


def test_openai_mode_rejects_what_openai_rejects(server: FakeLLMServer) -> None:
    client = server.client()
    no_json_word: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError, match="json"):
        ask(client, messages=no_json_word, response_format={"type": "json_object"})
    nameless = {"type": "json_schema", "json_schema": {"schema": SCORE_SCHEMA}}
    with pytest.raises(openai.BadRequestError, match="name"):
        ask(client, response_format=nameless)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        ask(client, temperature=3)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        ask(client, max_tokens=0)
    assert ask(client, response_format={"type": "json_object"}).choices
    assert server.outcomes == ["bad_request"] * 4 + ["reply"]


def test_wrong_api_key_raises_authentication_error() -> None:
    with FakeLLMServer(api_key="right-key") as running:
        with pytest.raises(openai.AuthenticationError) as failed:
            ask(running.client(api_key="wrong-key"))
        assert failed.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            running.client(api_key="wrong-key").models.list()
        assert ask(running.client(api_key="right-key")).choices
        assert running.outcomes == ["unauthorized", "unauthorized", "reply"]
    with FakeLLMServer(api_key=None) as open_server:
        assert ask(open_server.client(api_key="anything")).choices


def test_models_endpoint(server: FakeLLMServer) -> None:
    client = server.client()
    assert [model.id for model in client.models.list()] == ["fake-model"]
    assert client.models.retrieve("fake-model").id == "fake-model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("missing")


def test_requests_are_recorded_without_the_key_and_reset_clears_them(
    server: FakeLLMServer,
) -> None:
    server.responder = lambda request: '"x"'
    server.enqueue(Fault.rate_limited())
    with pytest.raises(openai.RateLimitError):
        ask(server.client(), temperature=0.5)
    [request] = server.requests
    assert request.body is not None
    assert request.body["temperature"] == 0.5
    assert request.body["messages"] == MESSAGES
    assert request.headers["authorization"] == "<redacted>"
    assert DEFAULT_API_KEY not in json.dumps([request.headers, request.body])
    assert request.headers["user-agent"].startswith("OpenAI/Python")
    assert request.outcome == "rate_limited"
    assert server.chat_requests == server.requests
    server.reset()
    assert (server.requests, server.counts, server.queued) == ([], {}, 0)
    assert server.responder is None
    assert ask(server.client()).choices[0].message.content == "{}"


def test_responder_exception_is_a_500_and_recorded() -> None:
    def broken(request: ParsedRequest) -> str:
        raise RuntimeError("responder bug")

    with FakeLLMServer(responder=broken) as running:
        with pytest.raises(openai.InternalServerError):
            ask(running.client())
        [error] = running.errors
        assert "responder bug" in error
        assert running.outcomes == ["internal_error"]


def test_responder_may_return_faults(server: FakeLLMServer, sdk_sleeps: list[float]) -> None:
    calls: list[int] = []

    def flaky(request: ParsedRequest) -> str | Fault:
        calls.append(request.retry_count)
        return Fault.rate_limited(0.01) if len(calls) == 1 else '"ok"'

    server.responder = flaky
    assert ask(server.client(max_retries=1)).choices[0].message.content == '"ok"'
    assert calls == [0, 1]


def test_concurrent_requests_are_all_answered_and_counted(server: FakeLLMServer) -> None:
    server.responder = lambda request: json.dumps({"echo": request.messages[-1]["content"]})
    client = server.client()

    def one(index: int) -> str:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"json {index}"}]
        content = ask(client, messages=messages).choices[0].message.content
        return str(json.loads(content)["echo"])

    call: Callable[[int], str] = one
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, range(32)))
    assert answers == [f"json {index}" for index in range(32)]
    assert server.counts == {"reply": 32}
