"""The scoring rubric (README.md, "Scoring rubric"): deterministic signals -> four dimension
scores on a 0-10 scale -> a weighted total. Pure and deterministic: identical signals give
identical scores."""

from dataclasses import dataclass

from toban_orchestration.analysis.signals import UserSignals

RUBRIC_VERSION = "rubric-v1"
# Each dimension's raw value is a weighted sum of signals; it maps to 0-10 with a saturating
# curve that gives 5 at HALF_POINT[dimension] and approaches 10 (never above).
HALF_POINT = {
    "problem_solving": 4.0,
    "knowledge_sharing": 4.0,
    "team_coordination": 4.0,
    "engagement": 10.0,
}
TOTAL_WEIGHTS = {
    "problem_solving": 0.30,
    "knowledge_sharing": 0.25,
    "team_coordination": 0.25,
    "engagement": 0.20,
}


@dataclass(frozen=True)
class Scores:
    problem_solving: float
    knowledge_sharing: float
    team_coordination: float
    engagement: float
    total: float


def raw_dimensions(s: UserSignals) -> dict[str, float]:
    return {
        "problem_solving": 3 * s.answers + 1 * s.answers_with_reactions + 0.5 * s.thread_replies,
        "knowledge_sharing": 2 * s.knowledge_posts + 0.5 * s.reactions_received,
        "team_coordination": 2 * s.coordination_messages + 1 * s.mentions + 1 * s.threads_started,
        "engagement": 1 * s.messages + 0.5 * s.reactions_given + 1 * s.threads_joined,
    }


def saturate(raw: float, half_point: float) -> float:
    return round(10 * (1 - 2 ** (-raw / half_point)), 2) if raw > 0 else 0.0


def total(dimensions: dict[str, float]) -> float:
    return round(sum(TOTAL_WEIGHTS[name] * dimensions[name] for name in TOTAL_WEIGHTS), 2)


def score(signals: UserSignals) -> Scores:
    raw = raw_dimensions(signals)
    dimensions = {name: saturate(value, HALF_POINT[name]) for name, value in raw.items()}
    return Scores(**dimensions, total=total(dimensions))
