import dagster as dg

from toban_orchestration.security.tokens import TokenCipher


class SlackCredentials(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Decrypts workspace tokens. It has no config on purpose: keys come from
    TOBAN_ENCRYPTION_KEYS, never from run config, which the UI shows."""

    def cipher(self) -> TokenCipher | None:
        """None when no key is configured: export workspaces need none, and a token workspace
        then fails with the message that says how to set one."""
        try:
            return TokenCipher.from_settings()
        except Exception:
            return None
