"""The LLM path: one channel transcript in, a validated answer out, through any
OpenAI-compatible endpoint with the `openai` SDK.

Every answer is validated with pydantic: lengths are bounded, scores clamped to 0-10, author
and message references must exist in the transcript, and a truncated answer
(`finish_reason == "length"`) is a failure. Invalid answers are asked again a bounded number of
times; then the channel's analysis fails with the reason, and nothing is invented to fill in.
"""

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

import openai
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from toban_orchestration.analysis.prompt import COMBINE_PROMPT, SYSTEM_PROMPT, Transcript
from toban_orchestration.analysis.pseudonyms import ALIAS_PATTERN
from toban_orchestration.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def _clamp(value: Any) -> Any:
    """Small models ignore numeric bounds: bring scores into range instead of failing."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(10.0, max(0.0, float(value)))
    return value


Score = Annotated[float, BeforeValidator(_clamp)]


class Evidence(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = Field(max_length=12)
    reason: str = Field(max_length=300)


class Judgement(BaseModel):
    model_config = ConfigDict(extra="ignore")
    author: str = Field(max_length=12)
    problem_solving: Score
    knowledge_sharing: Score
    team_coordination: Score
    engagement: Score
    insight: str = Field(max_length=600)
    evidence: list[Evidence] = Field(default_factory=list, max_length=8)


class ChannelAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    summary: str = Field(max_length=2000)
    topics: str = Field(max_length=2000)
    contributor_insights: str = Field(max_length=3000)
    highlights: str = Field(max_length=3000)
    contributors: list[Judgement] = Field(default_factory=list, max_length=100)


ANSWER_SCHEMA = ChannelAnswer.model_json_schema()


class AnswerRejected(ValueError):
    """An answer that cannot be used; the message says why (never the key, never the prompt)."""


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    retries: int = 0

    def __iadd__(self, other: "Usage") -> "Usage":
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cache_hits += other.cache_hits
        self.retries += other.retries
        return self


@dataclass
class LLMResult:
    answer: ChannelAnswer
    raw: dict[str, Any]
    usage: Usage = field(default_factory=Usage)


def answer_texts(answer: ChannelAnswer) -> list[str]:
    """Every free text of an answer (what a report stores)."""
    texts = [answer.summary, answer.topics, answer.contributor_insights, answer.highlights]
    for judgement in answer.contributors:
        texts.append(judgement.insight)
        texts.extend(e.reason for e in judgement.evidence)
    return texts


def validate_answer(content: str, transcript: Transcript) -> ChannelAnswer:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as error:
        raise AnswerRejected(f"the answer is not JSON ({error.msg})") from None
    try:
        answer = ChannelAnswer.model_validate(data)
    except ValidationError as error:
        raise AnswerRejected(f"the answer does not fit the schema: {error.errors()[0]['msg']} "
                             f"at {error.errors()[0]['loc']}") from None  # fmt: skip
    for judgement in answer.contributors:
        if judgement.author not in transcript.author_refs:
            raise AnswerRejected(f"unknown author reference {judgement.author!r}")
        for evidence in judgement.evidence:
            if evidence.message not in transcript.message_refs:
                raise AnswerRejected(f"unknown message reference {evidence.message!r}")
    if transcript.aliases:
        for text in answer_texts(answer):
            for alias in ALIAS_PATTERN.findall(text):
                if alias not in transcript.aliases:
                    raise AnswerRejected(f"unknown person alias {alias!r}")
    authors = [j.author for j in answer.contributors]
    if len(authors) != len(set(authors)):
        raise AnswerRejected("an author is judged twice")
    # The model must cite what it judged: an author who wrote something needs evidence.
    ref_of = {slack_id: ref for ref, slack_id in transcript.author_refs.items()}
    writers = {ref_of[m.author] for m in transcript.message_refs.values()}
    for judgement in answer.contributors:
        if judgement.author in writers and not judgement.evidence:
            raise AnswerRejected(f"no message is cited for {judgement.author}")
    return answer


class ChannelAnalyst:
    """Asks the configured model about one transcript at a time."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        if not (self.settings.llm_base_url and self.settings.llm_model):
            raise ValueError("TOBAN_LLM_BASE_URL and TOBAN_LLM_MODEL must both be set")
        self.model: str = self.settings.llm_model
        api_key = self.settings.llm_api_key.get_secret_value() if self.settings.llm_api_key else ""
        self._client = openai.OpenAI(
            base_url=self.settings.llm_base_url,
            api_key=api_key or "not-needed",
            timeout=self.settings.llm_timeout_seconds,
            max_retries=2,  # the SDK's own backoff for 408/409/429/5xx, honouring Retry-After
        )
        self._json_schema_supported: bool | None = None  # learnt on the first request

    def _create(
        self,
        transcript: Transcript,
        response_format: dict[str, Any],
        *,
        system: str = SYSTEM_PROMPT,
        probe: bool = False,
    ) -> Any:
        if response_format["type"] == "json_object":
            # Without json_schema the model only sees the schema if the prompt carries it.
            system += "\nThe json schema of the answer:\n" + json.dumps(
                ANSWER_SCHEMA, separators=(",", ":")
            )
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": transcript.text},
            ],
            "temperature": self.settings.llm_temperature,
            "max_tokens": self.settings.llm_max_tokens,
            "response_format": response_format,
        }
        client = self._client.with_options(max_retries=0) if probe else self._client
        return client.chat.completions.create(**request)

    def _request(self, transcript: Transcript, system: str) -> Any:
        schema_format = {
            "type": "json_schema",
            "json_schema": {"name": "channel_analysis", "schema": ANSWER_SCHEMA},
        }
        if self._json_schema_supported is None:
            # The first request probes without the SDK's retries: servers that refuse
            # json_schema (llama.cpp) answer HTTP 500, which would otherwise be retried.
            try:
                response = self._create(transcript, schema_format, system=system, probe=True)
                self._json_schema_supported = True
                return response
            except (openai.APIStatusError, openai.APIConnectionError) as error:
                refused = isinstance(
                    error, openai.BadRequestError | openai.InternalServerError
                ) and ("response_format" in str(error) or "json_schema" in str(error))
                if refused:
                    logger.info("The server refuses json_schema; using json_object instead")
                    self._json_schema_supported = False
                # Anything else (a rate limit, an outage) is asked again below, with the SDK's
                # retries and backoff.
        if self._json_schema_supported is False:
            return self._create(transcript, {"type": "json_object"}, system=system)
        return self._create(transcript, schema_format, system=system)

    def analyze_window(self, full: Transcript, chunks: list[Transcript]) -> LLMResult:
        """One call when the window fits the budget; otherwise one call per chunk (threads
        kept whole, a few at a time) and a final call that combines the partial answers."""
        if len(chunks) <= 1:
            return self.analyze(full)
        with ThreadPoolExecutor(max_workers=self.settings.llm_concurrency) as pool:
            partials = list(pool.map(self.analyze, chunks))
        combined = Transcript(
            text=(
                f"{len(partials)} partial analyses, in order:\n<transcript>\n"
                + json.dumps([p.answer.model_dump() for p in partials], separators=(",", ":"))
                + "\n</transcript>"
            ),
            message_refs=full.message_refs,
            author_refs=full.author_refs,
            aliases=full.aliases,
        )
        result = self.analyze(combined, system=COMBINE_PROMPT)
        for partial in partials:
            result.usage += partial.usage
        result.raw["parts"] = len(partials)
        return result

    def analyze(self, transcript: Transcript, system: str = SYSTEM_PROMPT) -> LLMResult:
        usage = Usage()
        reasons: list[str] = []
        for attempt in range(1, self.settings.llm_max_attempts + 1):
            response = self._request(transcript, system)
            usage.calls += 1
            if response.usage is not None:
                usage.prompt_tokens += response.usage.prompt_tokens
                usage.completion_tokens += response.usage.completion_tokens
            try:
                if not response.choices:
                    raise AnswerRejected("the answer has no choices")
                choice = response.choices[0]
                if choice.finish_reason == "length":
                    raise AnswerRejected("the answer was cut at max_tokens")
                answer = validate_answer(choice.message.content or "", transcript)
            except AnswerRejected as error:
                reasons.append(f"attempt {attempt}: {error}")
                usage.retries += 1 if attempt < self.settings.llm_max_attempts else 0
                continue
            return LLMResult(answer, {"answer": answer.model_dump()}, usage)
        raise AnalysisFailed("; ".join(reasons), usage)


class AnalysisFailed(RuntimeError):
    def __init__(self, reason: str, usage: Usage) -> None:
        super().__init__(reason)
        self.usage = usage


def estimated_cost(settings: Settings, usage: Usage) -> float:
    prices = json.loads(settings.llm_price_per_1k_tokens or "{}")
    prompt_price, completion_price = prices.get(settings.llm_model or "", [0.0, 0.0])
    return float(
        round(
            usage.prompt_tokens / 1000 * prompt_price
            + usage.completion_tokens / 1000 * completion_price,
            6,
        )
    )
