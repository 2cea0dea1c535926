import dagster as dg
from pydantic import Field

from toban_orchestration.security.tokens import EncryptionKeyError, TokenCipher


class SlackCredentials(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Decrypts workspace tokens. `definitions.py` gives it the keys as
    `dg.EnvVar("TOBAN_ENCRYPTION_KEYS")`, never as a value: run and resource config are shown in
    the UI, an environment variable's name only."""

    encryption_keys: str | None = Field(
        default=None,
        description="Fernet keys, comma-separated, newest first (TOBAN_ENCRYPTION_KEYS). Unset: "
        "export workspaces still sync; token workspaces fail saying how to set one.",
    )

    def cipher(self) -> TokenCipher | None:
        """None when no key is configured: export workspaces need none, and a token workspace
        then fails with the message that says how to set one. Malformed keys fail the step
        without retries (a retry cannot fix them), naming which key is wrong, never its value."""
        if not self.encryption_keys or not self.encryption_keys.strip():
            return None
        try:
            return TokenCipher.from_keys(self.encryption_keys)
        except EncryptionKeyError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
