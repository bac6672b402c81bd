"""AMP wire types: chunked JSON arguments, validation of what peers send."""

from __future__ import annotations

import pytest
from twisted.protocols import amp

from backends.common.rpc import (
    RpcError,
    TopicDelta,
    TopicItem,
    TopicWrite,
    UpdateState,
    parse_host_port,
)


def test_large_json_argument_round_trips_over_the_64k_cap() -> None:
    """A topic delta far above AMP's 64 KiB value cap is split and reassembled."""
    big = TopicDelta("t", tuple(TopicItem(f"k{i}", b"v" * 1000) for i in range(200)), True, 1, 2)
    box = UpdateState.makeArguments(  # type: ignore[no-untyped-call]
        {"registration_id": "r", "statestore_id": "s", "topic_deltas": [big.to_json()]}, None
    )
    wire = box.serialize()
    assert len(wire) > 3 * 65535
    (parsed,) = amp.parseString(wire)
    args = UpdateState.parseArguments(parsed, None)  # type: ignore[no-untyped-call]
    assert TopicDelta.from_json(args["topic_deltas"][0]) == big


def test_topic_item_validation_names_the_problem() -> None:
    """Malformed items are refused with a message naming what is wrong."""
    with pytest.raises(RpcError, match="non-empty string 'key'"):
        TopicItem.from_json({"value": ""})
    with pytest.raises(RpcError, match="not base64"):
        TopicItem.from_json({"key": "k", "value": "***"})
    with pytest.raises(RpcError, match="'items' must be a list"):
        TopicWrite.from_json({"topic": "t", "items": 3})
    with pytest.raises(RpcError, match="resync_from must be an integer"):
        TopicWrite.from_json({"topic": "t", "resync_from": "0"})


def test_parse_host_port() -> None:
    """host:port parses; missing or bad ports are errors naming the field."""
    assert parse_host_port("127.0.0.2:24000") == ("127.0.0.2", 24000)
    assert parse_host_port("[::1]:5") == ("::1", 5)
    with pytest.raises(RpcError, match="subscriber_location 'x' is not host:port"):
        parse_host_port("x", "subscriber_location")
    with pytest.raises(RpcError, match="out of range"):
        parse_host_port("h:70000")
