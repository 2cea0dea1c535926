"""Encryption of secrets at rest (Slack tokens, refresh tokens) with Fernet.

Keys come from TOBAN_ENCRYPTION_KEYS, newest first; MultiFernet encrypts with the first and
decrypts with any, which is what key rotation needs. Neither keys nor plaintexts ever appear in
an error message.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from toban_orchestration.settings import Settings, get_settings


class EncryptionKeyError(RuntimeError):
    """TOBAN_ENCRYPTION_KEYS is missing or malformed."""


class DecryptionError(RuntimeError):
    """A stored secret cannot be decrypted with the configured keys."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class TokenCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise EncryptionKeyError(
                "TOBAN_ENCRYPTION_KEYS is not set; Slack tokens are stored encrypted. Create a key "
                "with `toban keys generate` and export TOBAN_ENCRYPTION_KEYS=<key>."
            )
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except ValueError:
                raise EncryptionKeyError(
                    f"TOBAN_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes); create one with `toban keys generate`."
                ) from None
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "TokenCipher":
        settings = settings or get_settings()
        return cls.from_keys(
            settings.encryption_keys.get_secret_value() if settings.encryption_keys else ""
        )

    @classmethod
    def from_keys(cls, raw: str) -> "TokenCipher":
        """Keys as TOBAN_ENCRYPTION_KEYS holds them: comma-separated, newest first."""
        return cls([key for key in raw.split(",") if key.strip()])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str, *, what: str = "a stored secret") -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError(
                f"Cannot decrypt {what} with the keys in TOBAN_ENCRYPTION_KEYS (was it encrypted "
                "under a key that has since been removed?)."
            ) from None

    def rotate(self, ciphertext: str, *, what: str = "a stored secret") -> str:
        """Re-encrypt under the newest key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError(
                f"Cannot re-encrypt {what}: none of the keys in TOBAN_ENCRYPTION_KEYS decrypts it."
            ) from None

    def is_current(self, ciphertext: str) -> bool:
        """Whether the newest key already encrypts it (rotation then leaves it alone)."""
        try:
            self._primary.decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True
