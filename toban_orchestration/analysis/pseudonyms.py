"""Pseudonymized authors: what goes to the model names nobody.

When on (`parameters.pseudonymize_authors` of the analysis, or
`workspace_metadata.privacy.pseudonymize_authors` of the workspace, which an analysis cannot
switch off), every person in the transcript becomes an alias such as `Person-K7QZ2`: the
author legend, `<@U…>` and `@U…` mentions, and the workspace's known names (display, real and
user names, whole words, with or without `@`, and capitalized first and last names) inside
message text. The alias is a keyed hash (HMAC-SHA256) of the Slack user id under a key derived
from the workspace's database id, which never leaves the database: stable across the
workspace's analyses (so cached answers stay valid), not computable by whoever receives the
prompt. On the way in, aliases in the model's text are mapped back to the person's name, and
an answer citing an alias that is nobody in the workspace is rejected (and asked again).

Limits: a name spelled differently from the Slack profile (a nickname, a typo) is not
recognized, and the content of messages is not otherwise altered.
"""

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from toban_orchestration.analysis import store
from toban_orchestration.analysis.window import ChannelWindow

SETTING = "pseudonymize_authors"
PRIVACY_KEY = "privacy"
ALIAS_PREFIX = "Person-"
ALIAS_LENGTH = 5
ALIAS_PATTERN = re.compile(r"(?<![\w-])Person-[0-9A-Za-z]+\b")
"""Anything that looks like an alias, known or invented."""
UNKNOWN_PART = "someone"
"""What a first or last name shared by several people becomes (it cannot say which one)."""
_KEY_CONTEXT = b"toban-pseudonyms-v1"
_RAW_MENTION = re.compile(r"<@(?P<raw>[UW][A-Z0-9]+)(?:\|[^>]*)?>")
# A Slack id as `processed_text` renders an unknown user: `@U024BE7LH` (it has a digit).
_ID_MENTION = re.compile(r"@(?P<id>[UW](?=[A-Z]*[0-9])[A-Z0-9]{6,})\b")
MIN_NAME_CHARS = 3


def enabled(
    parameters: Mapping[str, Any] | None, workspace_metadata: Mapping[str, Any] | None
) -> bool:
    """On when the workspace or the analysis says so."""
    privacy = (workspace_metadata or {}).get(PRIVACY_KEY) or {}
    return bool(privacy.get(SETTING, False)) or bool((parameters or {}).get(SETTING, False))


@dataclass(frozen=True)
class Person:
    slack_id: str
    name: str
    """The name shown in reports (display name, else real name, else user name)."""
    variants: tuple[str, ...]
    """Every name the person goes by in the workspace."""


def _words(pattern: Iterable[str]) -> str:
    return "|".join(re.escape(v) for v in sorted(set(pattern), key=lambda v: (-len(v), v)))


class Pseudonyms:
    """One workspace's aliases, and the rewriting both ways."""

    def __init__(self, key: bytes, people: Iterable[Person]) -> None:
        self._key = key
        self._people = {p.slack_id: p for p in people}
        self._aliases = self._assign(sorted(self._people))
        self.by_alias: dict[str, Person] = {
            alias: self._people[slack_id] for slack_id, alias in self._aliases.items()
        }
        full: dict[str, str] = {}
        short: dict[str, str] = {}
        parts: dict[str, set[str]] = {}
        for person in self._people.values():
            for variant in person.variants:
                target = full if len(variant) >= MIN_NAME_CHARS else short
                target.setdefault(variant.casefold(), person.slack_id)
                for part in re.findall(r"[^\W\d_]{3,}", variant):
                    if part[0].isupper():
                        parts.setdefault(part, set()).add(person.slack_id)
        self._full, self._short, self._parts = full, short, parts
        # One pattern, one pass: an alias put in is never scanned again, and at any position
        # a mention beats a full name, which beats a first or last name.
        pieces = [_RAW_MENTION.pattern, _ID_MENTION.pattern]
        if full:
            pieces.append(rf"(?<![\w@])(?P<full>@?(?i:{_words(full)}))(?!\w)")
        if short:
            pieces.append(rf"(?<![\w@])@(?P<short>(?i:{_words(short)}))(?!\w)")
        if parts:
            pieces.append(rf"(?<![\w@-])(?P<part>{_words(parts)})(?!\w)")
        self._pattern = re.compile("|".join(pieces))

    def _hash(self, slack_id: str) -> str:
        digest = hmac.new(self._key, slack_id.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode().rstrip("=")

    def _assign(self, slack_ids: list[str]) -> dict[str, str]:
        """Short aliases; people whose short alias collides get longer ones (deterministic:
        the same workspace gives the same aliases)."""
        short: dict[str, list[str]] = {}
        for slack_id in slack_ids:
            short.setdefault(self._hash(slack_id)[:ALIAS_LENGTH], []).append(slack_id)
        aliases: dict[str, str] = {}
        for code, ids in short.items():
            for slack_id in ids:
                aliases[slack_id] = ALIAS_PREFIX + (
                    code if len(ids) == 1 else self._hash(slack_id)[: ALIAS_LENGTH * 3]
                )
        return aliases

    def alias(self, slack_id: str) -> str:
        """The person's alias; an id outside the workspace's users gets one too (it maps back
        to nobody)."""
        known = self._aliases.get(slack_id)
        if known is not None:
            return known
        return ALIAS_PREFIX + self._hash(slack_id)[: ALIAS_LENGTH * 3]

    @property
    def known_aliases(self) -> frozenset[str]:
        return frozenset(self.by_alias)

    def text(self, text: str) -> str:
        """Message text with every person it names replaced by an alias."""
        return self._pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        groups = match.groupdict()
        if groups["raw"] or groups["id"]:
            return "@" + self.alias(groups["raw"] or groups["id"])
        if groups.get("full"):
            name = groups["full"]
            at = "@" if name.startswith("@") else ""
            return at + self.alias(self._full[name.removeprefix("@").casefold()])
        if groups.get("short"):
            return "@" + self.alias(self._short[groups["short"].casefold()])
        owners = self._parts[groups["part"]]
        return self.alias(next(iter(owners))) if len(owners) == 1 else UNKNOWN_PART

    def window(self, window: ChannelWindow) -> ChannelWindow:
        """A copy of the window as the model may see it: aliases for names, in legend and text
        (ids, references and counts unchanged)."""
        return replace(
            window,
            messages=[replace(m, text=self.text(m.text)) for m in window.messages],
            names={slack_id: self.alias(slack_id) for slack_id in window.names},
        )

    def unknown(self, text: str) -> list[str]:
        """Aliases in `text` that are nobody in the workspace."""
        return [a for a in ALIAS_PATTERN.findall(text) if a not in self.by_alias]

    def restore(self, text: str) -> str:
        """The model's text with each known alias turned back into the person's name."""
        return ALIAS_PATTERN.sub(
            lambda m: self.by_alias[m.group(0)].name if m.group(0) in self.by_alias else m.group(0),
            text,
        )


def workspace_key(workspace_id: uuid.UUID) -> bytes:
    return hashlib.sha256(_KEY_CONTEXT + workspace_id.bytes).digest()


def load_pseudonyms(connection: Connection, workspace_id: uuid.UUID) -> Pseudonyms:
    """Every user of the workspace (not only the window's authors: a message may name anyone)."""
    people = []
    for slack_id, display, real, name in store.workspace_user_names(connection, workspace_id):
        variants = tuple(v.strip() for v in (display, real, name) if v and v.strip())
        people.append(Person(slack_id, variants[0] if variants else slack_id, variants))
    return Pseudonyms(workspace_key(workspace_id), people)
