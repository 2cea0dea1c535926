"""Answers a well-behaved model would give to the analysis prompt, for the local LLM server."""

import json
import re

from toban_orchestration_tests.llm_server import ParsedRequest

_AUTHOR = re.compile(r"^(u\d+) = (.+)$", re.MULTILINE)
_LINE = re.compile(r"^(?:  > )?(m\d+) (u\d+) ", re.MULTILINE)


def good_answer(request: ParsedRequest, score: float = 8.0) -> str:
    """Every author judged, citing their own messages; "helper" scores `score`."""
    text = request.prompt_text
    authors = dict(_AUTHOR.findall(text))
    lines = _LINE.findall(text)
    contributors = []
    for ref, name in sorted(authors.items()):
        cited = [m for m, author in lines if author == ref][:2]
        helper = name == "helper"
        contributors.append(
            {
                "author": ref,
                "problem_solving": score if helper else 1,
                "knowledge_sharing": score if helper else 1,
                "team_coordination": 2,
                "engagement": 5,
                "insight": f"{name} did well",
                "evidence": [{"message": m, "reason": "judged by the model"} for m in cited],
            }
        )
    return json.dumps(
        {
            "summary": "Model summary of the week.",
            "topics": "Deploy tokens.",
            "contributor_insights": "The helper answered.",
            "highlights": "Token rotation explained.",
            "contributors": contributors,
        }
    )
