"""`db.ids`: UUIDs of version 7, ordered by the time they were made."""

import time
import uuid

from toban_orchestration.db.ids import time_ordered_uuids


def test_ids_are_version_7_distinct_and_ordered_by_time() -> None:
    before = time.time_ns() // 1_000_000
    first = time_ordered_uuids(500)
    time.sleep(0.002)
    second = time_ordered_uuids(500)
    after = time.time_ns() // 1_000_000
    ids = first + second
    assert len(set(ids)) == 1000
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    assert all(before <= i.int >> 80 <= after for i in ids)
    assert max(first) < min(second)  # a later millisecond sorts after
    assert time_ordered_uuids(0) == []
