"""A fake Slack Web API for tests: a generated workspace (the ground truth) and an HTTP server.

Typical use::

    workspace = generate_workspace(seed=1)
    with FakeSlackServer(workspace, token="xoxb-test") as server:
        client = WebClient(token="xoxb-test", base_url=server.base_url)
        ...  # run the code under test, then compare the database with workspace.*_dicts()
"""

from .server import (
    DEFAULT_TOKEN,
    HISTORY_METHODS,
    CallRecord,
    FakeSlackServer,
    Fault,
    minimum_calls,
    page_count,
)
from .workspace import (
    BOT_MESSAGE,
    CHANNEL_JOIN,
    FILE_SHARE,
    HUDDLE_THREAD,
    THREAD_BROADCAST,
    TOMBSTONE,
    TOMBSTONE_TEXT,
    Channel,
    FakeWorkspace,
    Message,
    Reaction,
    User,
    WorkspaceError,
    generate_workspace,
    int_to_ts,
    ts_to_int,
)

__all__ = [
    "BOT_MESSAGE",
    "CHANNEL_JOIN",
    "DEFAULT_TOKEN",
    "FILE_SHARE",
    "HISTORY_METHODS",
    "HUDDLE_THREAD",
    "THREAD_BROADCAST",
    "TOMBSTONE",
    "TOMBSTONE_TEXT",
    "CallRecord",
    "Channel",
    "FakeSlackServer",
    "FakeWorkspace",
    "Fault",
    "Message",
    "Reaction",
    "User",
    "WorkspaceError",
    "generate_workspace",
    "int_to_ts",
    "minimum_calls",
    "page_count",
    "ts_to_int",
]
