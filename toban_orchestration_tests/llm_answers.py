"""Answers a well-behaved model would give to the analysis prompt, for the local LLM server.

Like a real model, the answers follow what each request asks for (read from its instructions,
not from any knowledge of the code): the report sections and highlights when asked, a judgement
of each author asked for, citing up to the number of messages asked for. They are never shaped
to fit ``max_tokens``: the server counts what they say and cuts them there. ``thorough`` writes
every text up to its stated bound, in the channel's own words (so in its script): the longest
answer a request allows, which is what the output budget has to hold.
"""

import json
import re
from collections import Counter
from typing import Any

from toban_orchestration_tests.fakes.llm_server import ParsedRequest, message_text

_AUTHOR = re.compile(r"^(u\d+) = (.+)$", re.MULTILINE)
_LINE = re.compile(r"^(?:  > )?(m\d+) (u\d+) \d\d:\d\d ?(.*)$", re.MULTILINE)
_ASKED = re.compile(r"one judgement for each of these authors, and no other: ([u\d, ]+)\.")
_CITED = re.compile(r'"message":"(m\d+)"')


def _bound(pattern: str, instructions: str) -> int:
    found = re.search(pattern, instructions)
    if found is None:
        raise ValueError(f"the instructions do not say {pattern!r}")
    return int(found.group(1))


def _written(start: str, source: str, limit: int, thorough: bool) -> str:
    """`start`, or with `thorough` as much as `limit` allows, going on with the channel's text."""
    if not thorough or not source:
        return start[:limit]
    text = start
    while len(text) < limit:
        text += " " + source
    return text[:limit].rstrip() or start[:limit]


def good_answer(request: ParsedRequest, score: float = 8.0, *, thorough: bool = False) -> str:
    """Every author asked for judged, citing their own messages; "helper" scores `score`. A
    request combining partial analyses gets their summaries joined and their highlights."""
    system = message_text(request.messages[0]) if request.messages else ""
    data = request.prompt_text.rsplit("<transcript>", 1)[-1]
    authors = dict(_AUTHOR.findall(request.prompt_text))
    lines = _LINE.findall(data)
    source = " ".join(text for _, _, text in lines)
    answer: dict[str, Any] = {}
    if "- the report sections:" in system:
        summary = "Model summary of the week."
        cited = [ref for ref, _, _ in lines]
        writers = Counter(author for _, author, _ in lines).most_common(1)
        insights = "The helper answered." + "".join(
            f" Most messages came from {authors.get(ref, ref)}." for ref, _ in writers
        )
        if "partial analyses" in request.prompt_text:
            parts = json.loads(data.split("</transcript>")[0])
            summary = " ".join(part["summary"] for part in parts)
            insights = " ".join(part["contributor_insights"] for part in parts)
            cited = _CITED.findall(data)
            source = " ".join(part["summary"] for part in parts)
        highlights = _bound(r"highlights: at most (\d+)", system)
        highlight_chars = _bound(r"a text of at most (\d+) characters", system)
        answer |= {
            "summary": _written(
                summary, source, _bound(r"summary \(at most (\d+)", system), thorough
            ),
            "topics": _written(
                "Deploy tokens.", source, _bound(r"topics \(at most (\d+)", system), thorough
            ),
            "contributor_insights": _written(
                insights,
                source,
                _bound(r"contributor_insights \(at most (\d+)", system),
                thorough,
            ),
            "highlights": [
                {
                    "message": ref,
                    "text": _written(
                        "Token rotation explained.", source, highlight_chars, thorough
                    ),
                }
                for ref in list(dict.fromkeys(cited))[:highlights]
            ],
        }
    asked = _ASKED.search(system)
    if asked is not None:
        evidence_items = _bound(r"evidence: 1 to (\d+) messages", system)
        insight_chars = _bound(r"Each insight at most (\d+) characters", system)
        reason_chars = _bound(r"each reason at most (\d+) characters", system)
        contributors = []
        for ref in asked.group(1).split(", "):
            name = authors.get(ref, ref)
            helper = name == "helper"
            own = [(m, text) for m, author, text in lines if author == ref][:evidence_items]
            contributors.append(
                {
                    "author": ref,
                    "problem_solving": score if helper else 1,
                    "knowledge_sharing": score if helper else 1,
                    "team_coordination": 2,
                    "engagement": 5,
                    "insight": _written(f"{name} did well", source, insight_chars, thorough),
                    "evidence": [
                        {
                            "message": m,
                            "reason": _written("judged by the model", text, reason_chars, thorough),
                        }
                        for m, text in own
                    ],
                }
            )
        answer["contributors"] = contributors
    return json.dumps(answer, ensure_ascii=False)


def thorough_answer(request: ParsedRequest) -> str:
    """`good_answer` at full length: every text as long as the request allows."""
    return good_answer(request, thorough=True)


def merging_answer(request: ParsedRequest) -> str:
    """The good answer, which merges a combining request's partial analyses (kept under this
    name for the tests that wrap it)."""
    return good_answer(request)
