"""The queue's message decoding: what Session.deserialize gives, checked the same way."""

from typing import Any

import pytest
from jupyter_client.session import Session

from jupyter_canvas.kernel_messages import decode_message


def wire(session: Session, msg_type: str, content: dict[str, Any]) -> list[bytes]:
    parent = session.msg_header("execute_request")
    frames = session.serialize(session.msg(msg_type, content, parent=parent))
    return frames[frames.index(b"<IDS|MSG>") + 1 :]


def test_same_message_as_jupyter_client_but_dates_as_sent() -> None:
    sender = Session(key=b"secret")
    frames = wire(sender, "stream", {"name": "stdout", "text": "1\n"})
    ours = decode_message(Session(key=b"secret"), frames)
    theirs = Session(key=b"secret").deserialize(frames)
    for key in ("msg_id", "msg_type", "content", "metadata"):
        assert ours[key] == theirs[key]
    assert ours["parent_header"]["msg_id"] == theirs["parent_header"]["msg_id"]
    assert ours["header"]["date"] == theirs["header"]["date"].isoformat().replace("+00:00", "Z")


def test_tampered_replayed_and_unsigned_messages_are_refused() -> None:
    sender, receiver = Session(key=b"secret"), Session(key=b"secret")
    frames = wire(sender, "status", {"execution_state": "busy"})
    tampered = [*frames[:4], b'{"execution_state": "idle"}', *frames[5:]]
    with pytest.raises(ValueError, match="Invalid Signature"):
        decode_message(receiver, tampered)
    decode_message(receiver, frames)
    with pytest.raises(ValueError, match="Duplicate Signature"):
        decode_message(receiver, frames)
    with pytest.raises(ValueError, match="Unsigned"):
        decode_message(receiver, [b"", *frames[1:]])
    with pytest.raises(ValueError, match="malformed"):
        decode_message(receiver, frames[:3])


def test_unsigned_sessions_decode_without_a_signature() -> None:
    frames = wire(Session(key=b""), "status", {"execution_state": "idle"})
    assert decode_message(Session(key=b""), frames)["content"] == {"execution_state": "idle"}
