"""A ChannelAnalyst pointed at the local LLM server, with the API key the tests look for in
logs and rows."""

from toban_orchestration.analysis.llm import ChannelAnalyst
from toban_orchestration.settings import Settings
from toban_orchestration_tests.fakes.llm_server import FakeLLMServer

API_KEY = "sk-test-secret-4242"


def analyst_for(server: FakeLLMServer, **overrides: object) -> ChannelAnalyst:
    values: dict[str, object] = {
        "llm_base_url": server.base_url,
        "llm_model": "fake-model",
        "llm_api_key": API_KEY,
        "llm_timeout_seconds": 5,
        **overrides,
    }
    settings = Settings(**values)  # type: ignore[arg-type]
    return ChannelAnalyst(settings)
