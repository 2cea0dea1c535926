"""What the analyses' assets need while they run, besides the database: where reports go, how
many weeks a trend shows, and what the model's tokens cost."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from toban_orchestration.analysis.llm import Usage, usage_cost


class AnalysisSettings(dg.ConfigurableResource):  # type: ignore[type-arg]
    """`definitions.py` builds it from the settings (TOBAN_REPORTS_DIR, TOBAN_TREND_WEEKS,
    TOBAN_LLM_MODEL, TOBAN_LLM_PRICE_PER_1K_TOKENS); a test passes its own values."""

    report_directory: str = Field(
        description="Where each window's HTML report is written (TOBAN_REPORTS_DIR; unset: "
        "reports/ in TOBAN_STATE_DIR)."
    )
    trend_weeks: int = Field(
        ge=2,
        le=104,
        description="Weeks of weekly scores slack_contributions_trends shows (TOBAN_TREND_WEEKS).",
    )
    llm_model: str | None = Field(
        default=None,
        description="The model the analyses ask (TOBAN_LLM_MODEL), to price its tokens; unset: "
        "the offline analyzer, which costs nothing.",
    )
    llm_price_per_1k_tokens: str = Field(
        default="{}",
        description='JSON price table {"model": [prompt USD, completion USD] per 1k tokens} '
        "(TOBAN_LLM_PRICE_PER_1K_TOKENS).",
    )

    @property
    def report_path(self) -> Path:
        return Path(self.report_directory)

    def estimated_cost(self, usage: Usage) -> float:
        return usage_cost(self.llm_price_per_1k_tokens, self.llm_model, usage)
