"""Slack export archives built for the tests and benchmarks: zips of a folder, and generated
exports of any size."""

import datetime
import json
import zipfile
from pathlib import Path
from typing import Any


def zip_tree(source: Path, archive: Path, *, top: str | None = None) -> Path:
    """Zip a folder's content, at the root of the zip or under one top-level folder."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                name = path.relative_to(source).as_posix()
                zipped.write(path, f"{top}/{name}" if top else name)
    return archive


def write_generated_export(
    root: Path, *, channels: int, days: int, per_day: int, text_size: int = 200
) -> int:
    """A modern-looking export of channels x days x per_day messages; returns that count."""
    root.mkdir(parents=True)
    team = "T0BENCH01"
    users = [{"id": f"U{i:08d}", "team_id": team, "name": f"user{i}"} for i in range(50)]
    (root / "users.json").write_text(json.dumps(users))
    listed = []
    start = datetime.date(2023, 1, 1)
    base = int(datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC).timestamp())
    for c in range(channels):
        name = f"channel-{c:04d}"
        listed.append({"id": f"C{c:08d}", "name": name, "created": base, "members": []})
        (root / name).mkdir()
        for d in range(days):
            day_messages = []
            for m in range(per_day):
                ts = f"{base + d * 86400 + m * 10}.{m:06d}"
                user = users[(c + m) % len(users)]["id"]
                message: dict[str, Any] = {
                    "client_msg_id": f"{c:08x}-{d:04x}-{m:04x}-0000-000000000000",
                    "type": "message",
                    "text": "x" * text_size,
                    "user": user,
                    "ts": ts,
                    "team": team,
                    "user_team": team,
                    "source_team": team,
                    "user_profile": {"real_name": user, "display_name": user, "team": team},
                    "blocks": [{"type": "rich_text", "block_id": "abc", "elements": []}],
                }
                if m % 10 == 0:
                    message["reactions"] = [{"name": "tada", "users": [user], "count": 1}]
                day_messages.append(message)
            day = start + datetime.timedelta(days=d)
            (root / name / f"{day.isoformat()}.json").write_text(json.dumps(day_messages, indent=4))
    (root / "channels.json").write_text(json.dumps(listed))
    return channels * days * per_day
