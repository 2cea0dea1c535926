"""The LLM path: one channel transcript in, a validated answer out, through any
OpenAI-compatible endpoint with the `openai` SDK.

The output budget follows the channel. An answer's parts are bounded (lengths and list sizes in
the JSON schema, the instructions and the validation, `analysis/prompt.py`), so the longest
answer a request allows is known before it is sent: a channel whose whole answer fits
`TOBAN_LLM_MAX_TOKENS` is asked once; a busier one is asked for its report sections in one
request and for its contributors in batches that each fit. An answer still cut at max_tokens
(`finish_reason == "length"`, e.g. a tokenizer less thrifty than estimated) is asked again in
two halves instead of failing.

Every answer is validated with pydantic: lengths are bounded, scores clamped to 0-10, every
author asked for is judged, and author and message references must exist in the transcript.
Invalid answers are asked again a bounded number of times; then the channel's analysis fails
with the reason, and nothing is invented to fill in.
"""

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from toban_orchestration.analysis.prompt import (
    CHARS_PER_TOKEN,
    COMBINE_PROMPT,
    CONTRIBUTOR_INSIGHTS_CHARS,
    EVIDENCE_ITEMS,
    HIGHLIGHT_CHARS,
    HIGHLIGHTS,
    INSIGHT_CHARS,
    REASON_CHARS,
    REF_CHARS,
    SUMMARY_CHARS,
    SYSTEM_PROMPT,
    TOPICS_CHARS,
    AnswerPart,
    Transcript,
)
from toban_orchestration.analysis.pseudonyms import ALIAS_PATTERN
from toban_orchestration.settings import Settings, get_settings

logger = logging.getLogger(__name__)

SCORE_NAMES = ("problem_solving", "knowledge_sharing", "team_coordination", "engagement")
# Models write JSON with spaces, newlines and escapes that the compact estimate below leaves
# out; this much room on top keeps an answer within its bounds from being cut.
ANSWER_MARGIN = 1.15


def _clamp(value: Any) -> Any:
    """Small models ignore numeric bounds: bring scores into range instead of failing."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(10.0, max(0.0, float(value)))
    return value


Score = Annotated[float, BeforeValidator(_clamp)]


class Evidence(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = Field(max_length=REF_CHARS)
    reason: str = Field(max_length=REASON_CHARS)


class Judgement(BaseModel):
    model_config = ConfigDict(extra="ignore")
    author: str = Field(max_length=REF_CHARS)
    problem_solving: Score
    knowledge_sharing: Score
    team_coordination: Score
    engagement: Score
    insight: str = Field(max_length=INSIGHT_CHARS)
    evidence: list[Evidence] = Field(default_factory=list, max_length=EVIDENCE_ITEMS)


class Highlight(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = Field(max_length=REF_CHARS)
    text: str = Field(min_length=1, max_length=HIGHLIGHT_CHARS)


class PartAnswer(BaseModel):
    """One request's answer: the sections when asked for, judgements when asked for."""

    model_config = ConfigDict(extra="ignore")
    summary: str | None = Field(default=None, max_length=SUMMARY_CHARS)
    topics: str | None = Field(default=None, max_length=TOPICS_CHARS)
    contributor_insights: str | None = Field(default=None, max_length=CONTRIBUTOR_INSIGHTS_CHARS)
    highlights: list[Highlight] = Field(default_factory=list, max_length=HIGHLIGHTS)
    contributors: list[Judgement] = Field(default_factory=list)


class ChannelAnswer(BaseModel):
    """A channel's whole answer, assembled from its parts; what `raw_response` keeps."""

    model_config = ConfigDict(extra="ignore")
    summary: str
    topics: str
    contributor_insights: str
    highlights: str
    """The highlights rendered for the report, one `- ` line each."""
    cited_highlights: list[Highlight] = Field(default_factory=list)
    contributors: list[Judgement] = Field(default_factory=list)


class AnswerRejected(ValueError):
    """An answer that cannot be used; the message says why (never the key, never the prompt)."""


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    retries: int = 0
    splits: int = 0
    """Answers cut at max_tokens that were asked again in two halves."""

    def __iadd__(self, other: "Usage") -> "Usage":
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cache_hits += other.cache_hits
        self.retries += other.retries
        self.splits += other.splits
        return self


@dataclass
class LLMResult:
    answer: ChannelAnswer
    raw: dict[str, Any]
    usage: Usage = field(default_factory=Usage)


class AnalysisFailed(RuntimeError):
    def __init__(self, reason: str, usage: Usage) -> None:
        super().__init__(reason)
        self.usage = usage


# The schema -----------------------------------------------------------------------------------


def _text(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars}


def _ref() -> dict[str, Any]:
    return {"type": "string", "minLength": 2, "maxLength": REF_CHARS}


def part_schema(part: AnswerPart) -> dict[str, Any]:
    """The JSON schema of one request's answer: only what it asks for, every list and text
    bounded, the authors to judge named (so a model cannot judge anybody else)."""
    properties: dict[str, Any] = {}
    if part.sections:
        properties |= {
            "summary": _text(part.chars(SUMMARY_CHARS)),
            "topics": _text(part.chars(TOPICS_CHARS)),
            "contributor_insights": _text(part.chars(CONTRIBUTOR_INSIGHTS_CHARS)),
            "highlights": {
                "type": "array",
                "maxItems": HIGHLIGHTS,
                "items": {
                    "type": "object",
                    "properties": {"message": _ref(), "text": _text(part.chars(HIGHLIGHT_CHARS))},
                    "required": ["message", "text"],
                    "additionalProperties": False,
                },
            },
        }
    if part.authors:
        score = {"type": "number", "minimum": 0, "maximum": 10}
        evidence = {
            "type": "object",
            "properties": {"message": _ref(), "reason": _text(part.chars(REASON_CHARS))},
            "required": ["message", "reason"],
            "additionalProperties": False,
        }
        judgement = {
            "type": "object",
            "properties": {
                "author": {"type": "string", "enum": list(part.authors)},
                **dict.fromkeys(SCORE_NAMES, score),
                "insight": _text(part.chars(INSIGHT_CHARS)),
                "evidence": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": EVIDENCE_ITEMS,
                    "items": evidence,
                },
            },
            "required": ["author", *SCORE_NAMES, "insight", "evidence"],
            "additionalProperties": False,
        }
        properties["contributors"] = {
            "type": "array",
            "minItems": len(part.authors),
            "maxItems": len(part.authors),
            "items": judgement,
        }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


# The budget -----------------------------------------------------------------------------------


def _longest_sections() -> dict[str, Any]:
    highlight = {"message": "m" * REF_CHARS, "text": "x" * HIGHLIGHT_CHARS}
    return {
        "summary": "x" * SUMMARY_CHARS,
        "topics": "x" * TOPICS_CHARS,
        "contributor_insights": "x" * CONTRIBUTOR_INSIGHTS_CHARS,
        "highlights": [highlight] * HIGHLIGHTS,
    }


def _longest_judgement() -> dict[str, Any]:
    evidence = {"message": "m" * REF_CHARS, "reason": "x" * REASON_CHARS}
    return {
        "author": "u" * REF_CHARS,
        **dict.fromkeys(SCORE_NAMES, 10.0),
        "insight": "x" * INSIGHT_CHARS,
        "evidence": [evidence] * EVIDENCE_ITEMS,
    }


def _split_chars(value: Any) -> tuple[int, int]:
    """(characters of JSON structure, characters of free text) in a value's JSON."""
    whole = len(json.dumps(value))
    text = sum(
        len(v)
        for v in _strings(value)
        if set(v) == {"x"}  # the free texts of the longest answers above
    )
    return whole - text, text


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


_SECTIONS_CHARS = _split_chars(_longest_sections())
_JUDGEMENT_CHARS = _split_chars(_longest_judgement())


def answer_tokens(part: AnswerPart, tokens_per_text_char: float = 1 / CHARS_PER_TOKEN) -> int:
    """The most tokens an answer to `part` may take while it keeps to its bounds: its JSON
    structure at CHARS_PER_TOKEN, its free text (scaled bounds) at the channel's own rate,
    plus a margin."""
    structure, text = 2, 0  # the enclosing braces
    if part.sections:
        structure, text = structure + _SECTIONS_CHARS[0], text + _SECTIONS_CHARS[1]
    if part.authors:
        n = len(part.authors)
        structure += len('"contributors": []') + n * (_JUDGEMENT_CHARS[0] + 2)
        text += n * _JUDGEMENT_CHARS[1]
    rate = max(tokens_per_text_char, 1 / CHARS_PER_TOKEN)
    tokens = structure / CHARS_PER_TOKEN + text * part.text_scale * rate
    return math.ceil(tokens * ANSWER_MARGIN)


def plan_parts(
    authors: Sequence[str], max_tokens: int, tokens_per_text_char: float = 1 / CHARS_PER_TOKEN
) -> list[AnswerPart]:
    """The requests one transcript needs so that each answer fits `max_tokens`: the whole
    answer at once when it fits, else the sections alone and the authors in even batches of
    the largest size that fits. A channel in a script that takes more tokens per character
    gets its text bounds scaled down (`AnswerPart.text_scale`), so it is planned like an
    English one. `max_tokens` must be at least `smallest_max_tokens()`."""
    scale = min(1.0, 1 / CHARS_PER_TOKEN / max(tokens_per_text_char, 1 / CHARS_PER_TOKEN))
    whole = AnswerPart(sections=True, authors=tuple(authors), text_scale=scale)
    if answer_tokens(whole, tokens_per_text_char) <= max_tokens:
        return [whole]
    one = answer_tokens(AnswerPart(False, ("u1",), scale), tokens_per_text_char)
    per_author = one - answer_tokens(AnswerPart(False, (), scale), tokens_per_text_char)
    fits = max(1, 1 + (max_tokens - one) // per_author)
    batches = math.ceil(len(authors) / fits)
    size = math.ceil(len(authors) / batches)
    return [AnswerPart(sections=True, text_scale=scale)] + [
        AnswerPart(sections=False, authors=tuple(authors[i : i + size]), text_scale=scale)
        for i in range(0, len(authors), size)
    ]


def smallest_max_tokens() -> int:
    """The least TOBAN_LLM_MAX_TOKENS that leaves room for any part of an English answer."""
    return max(
        answer_tokens(AnswerPart(sections=True)),
        answer_tokens(AnswerPart(sections=False, authors=("u1",))),
    )


# Validation -----------------------------------------------------------------------------------


def render_highlights(highlights: list[Highlight], transcript: Transcript) -> str:
    """One `- ` line per highlight, with the day and time of the message it cites."""
    lines = []
    for highlight in highlights:
        message = transcript.message_refs[highlight.message]
        lines.append(f"- {highlight.text} ({message.at:%m-%d %H:%M})")
    return "\n".join(lines)


def answer_texts(answer: ChannelAnswer | PartAnswer) -> list[str]:
    """Every free text of an answer (what a report stores)."""
    texts = [answer.summary or "", answer.topics or "", answer.contributor_insights or ""]
    if isinstance(answer, ChannelAnswer):
        texts += [answer.highlights, *(h.text for h in answer.cited_highlights)]
    else:
        texts += [h.text for h in answer.highlights]
    for judgement in answer.contributors:
        texts.append(judgement.insight)
        texts.extend(e.reason for e in judgement.evidence)
    return texts


def validate_answer(content: str, transcript: Transcript, part: AnswerPart) -> PartAnswer:
    """The answer to `part`, or AnswerRejected saying what is wrong with it."""
    try:
        data = json.loads(content)
    except json.JSONDecodeError as error:
        raise AnswerRejected(f"the answer is not JSON ({error.msg})") from None
    try:
        answer = PartAnswer.model_validate(data)
    except ValidationError as error:
        raise AnswerRejected(f"the answer does not fit the schema: {error.errors()[0]['msg']} "
                             f"at {error.errors()[0]['loc']}") from None  # fmt: skip
    if part.sections:
        for name in ("summary", "topics", "contributor_insights"):
            if not (getattr(answer, name) or "").strip():
                raise AnswerRejected(f"the report section {name} is missing")
    _check_lengths(answer, part)
    if part.sections:
        for highlight in answer.highlights:
            if highlight.message not in transcript.message_refs:
                raise AnswerRejected(f"unknown message reference {highlight.message!r}")
    else:
        answer = answer.model_copy(
            update=dict.fromkeys(("summary", "topics", "contributor_insights")) | {"highlights": []}
        )
    if not part.authors:
        answer = answer.model_copy(update={"contributors": []})
    authors = [j.author for j in answer.contributors]
    if len(authors) != len(set(authors)):
        raise AnswerRejected("an author is judged twice")
    for judgement in answer.contributors:
        if judgement.author not in part.authors:
            raise AnswerRejected(f"author {judgement.author!r} was not asked for")
        for evidence in judgement.evidence:
            if evidence.message not in transcript.message_refs:
                raise AnswerRejected(f"unknown message reference {evidence.message!r}")
        # The model must cite what it judged: every author asked for wrote something.
        if not judgement.evidence:
            raise AnswerRejected(f"no message is cited for {judgement.author}")
    missing = [author for author in part.authors if author not in authors]
    if missing:
        raise AnswerRejected(f"no judgement of {', '.join(missing)}")
    if transcript.aliases:
        for text in answer_texts(answer):
            for alias in ALIAS_PATTERN.findall(text):
                if alias not in transcript.aliases:
                    raise AnswerRejected(f"unknown person alias {alias!r}")
    return answer


def _check_lengths(answer: PartAnswer, part: AnswerPart) -> None:
    """The part's own text bounds (pydantic checked the English ones, the largest)."""
    texts: list[tuple[str, str | None, int]] = [
        ("summary", answer.summary, SUMMARY_CHARS),
        ("topics", answer.topics, TOPICS_CHARS),
        ("contributor_insights", answer.contributor_insights, CONTRIBUTOR_INSIGHTS_CHARS),
        *(("a highlight", h.text, HIGHLIGHT_CHARS) for h in answer.highlights),
    ]
    for judgement in answer.contributors:
        texts.append((f"the insight of {judgement.author}", judgement.insight, INSIGHT_CHARS))
        texts += [(f"a reason for {judgement.author}", e.reason, REASON_CHARS)
                  for e in judgement.evidence]  # fmt: skip
    for name, text, bound in texts:
        if text is not None and len(text) > part.chars(bound):
            raise AnswerRejected(
                f"{name} is {len(text)} characters long, more than {part.chars(bound)}"
            )


def assemble(parts: list[PartAnswer], transcript: Transcript) -> ChannelAnswer:
    """The channel's answer from the answers to its parts (exactly one carries sections)."""
    [sections] = [p for p in parts if p.summary is not None]
    return ChannelAnswer(
        summary=sections.summary or "",
        topics=sections.topics or "",
        contributor_insights=sections.contributor_insights or "",
        highlights=render_highlights(sections.highlights, transcript),
        cited_highlights=sections.highlights,
        contributors=[j for p in parts for j in p.contributors],
    )


def merge_judgements(partials: list[tuple[ChannelAnswer, Transcript]]) -> list[Judgement]:
    """Each author's judgements over the chunks of a long window, as one: scores averaged with
    the author's messages in each chunk as weights, the insight of the chunk where they wrote
    most, evidence taken in turn from their chunks (heaviest first), at most EVIDENCE_ITEMS."""
    weighted: dict[str, list[tuple[int, int, Judgement]]] = {}
    for index, (answer, chunk) in enumerate(partials):
        ref_of = {slack_id: ref for ref, slack_id in chunk.author_refs.items()}
        written = Counter(ref_of[m.author] for m in chunk.message_refs.values())
        for judgement in answer.contributors:
            weight = max(1, written[judgement.author])
            weighted.setdefault(judgement.author, []).append((weight, index, judgement))
    merged = []
    for author in sorted(weighted, key=lambda ref: int(ref.lstrip("u") or 0)):
        entries = sorted(weighted[author], key=lambda e: (-e[0], e[1]))
        total = sum(weight for weight, _, _ in entries)
        scores = {
            name: round(sum(w * getattr(j, name) for w, _, j in entries) / total, 2)
            for name in SCORE_NAMES
        }
        evidence: list[Evidence] = []
        for round_ in range(EVIDENCE_ITEMS):
            for _, _, judgement in entries:
                if round_ < len(judgement.evidence) and len(evidence) < EVIDENCE_ITEMS:
                    evidence.append(judgement.evidence[round_])
        merged.append(
            Judgement(author=author, **scores, insight=entries[0][2].insight, evidence=evidence)
        )
    return merged


# Requests -------------------------------------------------------------------------------------


@dataclass
class _Task:
    transcript: Transcript
    part: AnswerPart
    system: str


@dataclass
class _Done:
    answers: list[PartAnswer] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    failure: str | None = None


class ChannelAnalyst:
    """Asks the configured model about one transcript at a time."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        if not (self.settings.llm_base_url and self.settings.llm_model):
            raise ValueError("TOBAN_LLM_BASE_URL and TOBAN_LLM_MODEL must both be set")
        least = smallest_max_tokens()
        if self.settings.llm_max_tokens < least:
            raise ValueError(
                f"TOBAN_LLM_MAX_TOKENS is {self.settings.llm_max_tokens}: the smallest part of "
                f"an answer may take {least} tokens, set it to at least that"
            )
        self.model: str = self.settings.llm_model
        api_key = self.settings.llm_api_key.get_secret_value() if self.settings.llm_api_key else ""
        # Imported here, not with the module: the SDK takes about a second to import, which
        # every Dagster run process (a Slack sync too) paid before its first step.
        import openai

        self._client = openai.OpenAI(
            base_url=self.settings.llm_base_url,
            api_key=api_key or "not-needed",
            timeout=self.settings.llm_timeout_seconds,
            max_retries=2,  # the SDK's own backoff for 408/409/429/5xx, honouring Retry-After
        )
        self._json_schema_supported: bool | None = None  # learnt on the first request

    def _create(self, task: _Task, response_format: dict[str, Any], *, probe: bool) -> Any:
        system = task.system + "\n" + task.part.instructions()
        if response_format["type"] == "json_object":
            # Without json_schema the model only sees the schema if the prompt carries it.
            system += "\nThe json schema of the answer:\n" + json.dumps(
                part_schema(task.part), separators=(",", ":")
            )
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": task.transcript.text},
            ],
            "temperature": self.settings.llm_temperature,
            "max_tokens": self.settings.llm_max_tokens,
            "response_format": response_format,
        }
        client = self._client.with_options(max_retries=0) if probe else self._client
        return client.chat.completions.create(**request)

    def _request(self, task: _Task) -> Any:
        schema_format = {
            "type": "json_schema",
            "json_schema": {"name": "channel_analysis", "schema": part_schema(task.part)},
        }
        import openai  # loaded by __init__ already: a lookup in sys.modules

        if self._json_schema_supported is None:
            # The first request probes without the SDK's retries: servers that refuse
            # json_schema (llama.cpp) answer HTTP 500, which would otherwise be retried.
            try:
                response = self._create(task, schema_format, probe=True)
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
            return self._create(task, {"type": "json_object"}, probe=False)
        return self._create(task, schema_format, probe=False)

    def _ask(self, task: _Task) -> _Done:
        """One part, asked until a valid answer (at most TOBAN_LLM_MAX_ATTEMPTS), split in two
        when the answer is cut at max_tokens."""
        done = _Done()
        reasons: list[str] = []
        attempts = self.settings.llm_max_attempts
        for attempt in range(1, attempts + 1):
            response = self._request(task)
            done.usage.calls += 1
            if response.usage is not None:
                done.usage.prompt_tokens += response.usage.prompt_tokens
                done.usage.completion_tokens += response.usage.completion_tokens
            try:
                if not response.choices:
                    raise AnswerRejected("the answer has no choices")
                choice = response.choices[0]
                if choice.finish_reason == "length":
                    halves = task.part.split()
                    if not halves:
                        raise AnswerRejected("the answer was cut at max_tokens")
                    logger.info("An answer was cut at max_tokens; asking for it in two parts")
                    done.usage.splits += 1
                    for half in halves:
                        part = self._ask(_Task(task.transcript, half, task.system))
                        done.answers += part.answers
                        done.usage += part.usage
                        if part.failure is not None:
                            done.failure = part.failure
                            return done
                    return done
                answer = validate_answer(choice.message.content or "", task.transcript, task.part)
            except AnswerRejected as error:
                reasons.append(f"attempt {attempt}: {error}")
                done.usage.retries += 1 if attempt < attempts else 0
                continue
            done.answers.append(answer)
            return done
        done.failure = "; ".join(reasons)
        return done

    def _ask_all(self, tasks: list[_Task]) -> list[_Done]:
        """Every task, `TOBAN_LLM_CONCURRENCY` at a time (the first one alone while the server's
        support for json_schema is unknown, so that it is probed once)."""
        results: list[_Done] = []
        if tasks and self._json_schema_supported is None:
            results.append(self._ask(tasks[0]))
            tasks = tasks[1:]
        if len(tasks) == 1:
            return [*results, self._ask(tasks[0])]
        with ThreadPoolExecutor(max_workers=self.settings.llm_concurrency) as pool:
            results += pool.map(self._ask, tasks)
        return results

    def _answers(self, transcripts: list[Transcript]) -> tuple[list[ChannelAnswer], Usage]:
        """Each transcript's whole answer, its parts planned to fit the output budget."""
        tasks = [
            _Task(transcript, part, SYSTEM_PROMPT)
            for transcript in transcripts
            for part in plan_parts(
                list(transcript.author_refs),
                self.settings.llm_max_tokens,
                transcript.tokens_per_text_char,
            )
        ]
        done = self._ask_all(tasks)
        usage = Usage()
        for result in done:
            usage += result.usage
        failures = [result.failure for result in done if result.failure is not None]
        if failures:
            raise AnalysisFailed("; ".join(failures), usage)
        answers = []
        for transcript in transcripts:
            parts = [a for task, d in zip(tasks, done, strict=True)
                     if task.transcript is transcript for a in d.answers]  # fmt: skip
            answers.append(assemble(parts, transcript))
        return answers, usage

    def analyze(self, transcript: Transcript) -> LLMResult:
        [answer], usage = self._answers([transcript])
        return LLMResult(answer, {"answer": answer.model_dump()}, usage)

    def analyze_window(self, full: Transcript, chunks: list[Transcript]) -> LLMResult:
        """One transcript when the window fits the budget; otherwise one per chunk (threads
        kept whole), then a call that combines the chunks' report sections. Judgements of the
        same person in several chunks are merged without the model (`merge_judgements`), so
        the combining answer stays as small as one channel's sections."""
        if len(chunks) <= 1:
            return self.analyze(full)
        partials, usage = self._answers(chunks)
        combined = Transcript(
            text=(
                f"{len(partials)} partial analyses, in order:\n<transcript>\n"
                + json.dumps(
                    [
                        {
                            "summary": p.summary,
                            "topics": p.topics,
                            "contributor_insights": p.contributor_insights,
                            "highlights": [h.model_dump() for h in p.cited_highlights],
                        }
                        for p in partials
                    ],
                    separators=(",", ":"),
                    ensure_ascii=False,
                )
                + "\n</transcript>"
            ),
            message_refs=full.message_refs,
            author_refs=full.author_refs,
            aliases=full.aliases,
        )
        [part] = plan_parts([], self.settings.llm_max_tokens, combined.tokens_per_text_char)
        [done] = self._ask_all([_Task(combined, part, COMBINE_PROMPT)])
        usage += done.usage
        if done.failure is not None:
            raise AnalysisFailed(done.failure, usage)
        sections = assemble(done.answers, full)
        answer = sections.model_copy(
            update={"contributors": merge_judgements(list(zip(partials, chunks, strict=True)))}
        )
        return LLMResult(answer, {"answer": answer.model_dump(), "parts": len(chunks)}, usage)


def estimated_cost(settings: Settings, usage: Usage) -> float:
    return usage_cost(settings.llm_price_per_1k_tokens, settings.llm_model, usage)


def usage_cost(price_table: str | None, model: str | None, usage: Usage) -> float:
    """USD for `usage` by the JSON table of TOBAN_LLM_PRICE_PER_1K_TOKENS ({"model": [prompt,
    completion] USD per 1k tokens}); 0 for a model it does not list."""
    prices = json.loads(price_table or "{}")
    prompt_price, completion_price = prices.get(model or "", [0.0, 0.0])
    return float(
        round(
            usage.prompt_tokens / 1000 * prompt_price
            + usage.completion_tokens / 1000 * completion_price,
            6,
        )
    )
