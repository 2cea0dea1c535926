"""A fake Slack Web API for tests: a generated workspace (the ground truth) and an HTTP server.

Typical use::

    workspace = generate_workspace(seed=1)  # toban_orchestration.slack.sample's model
    with FakeSlackServer(workspace, token="xoxb-test") as server:
        client = WebClient(token="xoxb-test", base_url=server.base_url)
        ...  # run the code under test, then compare the database with workspace.*_dicts()

Events API (both transports)::

    server.enable_events(app_token="xapp-1-test")  # Socket Mode; or request_url=... for HTTP
    client = SocketModeClient(app_token="xapp-1-test", web_client=WebClient(base_url=...))
    workspace.add_message(channel_id, text="hi")  # records a message event, delivered
"""

from toban_orchestration.slack.sample import (
    BOT_MESSAGE,
    CHANNEL_JOIN,
    CHANNEL_LEAVE,
    FILE_SHARE,
    HUDDLE_THREAD,
    THREAD_BROADCAST,
    TOMBSTONE,
    TOMBSTONE_TEXT,
    Channel,
    Message,
    Reaction,
    User,
    WorkspaceError,
    int_to_ts,
    ts_to_int,
)

from .events import (
    DEFAULT_APP_TOKEN,
    DEFAULT_SIGNING_SECRET,
    DeliveryAttempt,
    EventDelivery,
    SignedPost,
    slack_signature,
)
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
    MESSAGE_CHANGED,
    MESSAGE_DELETED,
    FakeWorkspace,
    generate_workspace,
)

__all__ = [
    "BOT_MESSAGE",
    "CHANNEL_JOIN",
    "CHANNEL_LEAVE",
    "DEFAULT_APP_TOKEN",
    "DEFAULT_SIGNING_SECRET",
    "DEFAULT_TOKEN",
    "FILE_SHARE",
    "HISTORY_METHODS",
    "HUDDLE_THREAD",
    "MESSAGE_CHANGED",
    "MESSAGE_DELETED",
    "THREAD_BROADCAST",
    "TOMBSTONE",
    "TOMBSTONE_TEXT",
    "CallRecord",
    "Channel",
    "DeliveryAttempt",
    "EventDelivery",
    "FakeSlackServer",
    "FakeWorkspace",
    "Fault",
    "Message",
    "Reaction",
    "SignedPost",
    "User",
    "WorkspaceError",
    "generate_workspace",
    "int_to_ts",
    "minimum_calls",
    "page_count",
    "slack_signature",
    "ts_to_int",
]
