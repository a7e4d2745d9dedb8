"""Kernel messages as jupyter_canvas's own sockets read them: sessions, checks, decoding.

The queue's client and the status watch each read every IOPub message of their kernel,
so decoding is on the hot path. ``Session.deserialize`` also parses every string of the
header and parent header that looks like a date into a ``datetime``: nothing here reads
those dates, and that parsing was about three quarters of the cost of decoding a message
(some 30 of 40 µs). The functions below check what ``Session.deserialize`` checks (at
least five frames, a signature that is present, not a replay and valid) and leave the
dates as the ISO 8601 strings the kernel sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from jupyter_client.session import Session

#: How many recent message signatures a session of ours remembers to refuse replays.
#: jupyter_client's default (65,536) costs about 9 MB per session once full, and every
#: kernel has two of ours (the queue's client, the status watch) beside jupyter_server's.
REPLAY_WINDOW = 8192


def fresh_session(base: Any, username: str | None = None) -> Session:
    """A new session (its own id) that signs and verifies like the kernel's ``base``.

    Sharing the session of ``km.client()`` can route replies to another socket, so each
    of our clients has one of its own.
    """
    kwargs: dict[str, Any] = {
        "key": base.key,
        "signature_scheme": base.signature_scheme,
        "digest_history_size": REPLAY_WINDOW,
    }
    if username is not None:
        kwargs["username"] = username
    return Session(**kwargs)


def verify(session: Session, frames: Sequence[Any]) -> None:
    """Refuse (ValueError) a message that is short, unsigned, replayed or forged.

    The signature is recorded once verified (jupyter_client records it before), so a
    forged copy of a message cannot get the real one refused as a duplicate.
    """
    if len(frames) < 5:
        raise ValueError(f"malformed message: {len(frames)} frames, at least 5 expected")
    if session.auth is None:
        return
    signature = frames[0]
    if not signature:
        raise ValueError("Unsigned Message")
    if signature in session.digest_history:
        raise ValueError(f"Duplicate Signature: {signature!r}")
    if not hmac.compare_digest(signature, session.sign(list(frames[1:5]))):
        raise ValueError("Invalid Signature")
    session._add_digest(signature)  # a bounded set, culled by jupyter_client


def decode_message(session: Session, frames: Sequence[Any]) -> dict[str, Any]:
    """Verify and decode one message: ``Session.deserialize``'s dict, dates as sent."""
    verify(session, frames)
    unpack = session.unpack
    header = unpack(frames[1])
    return {
        "header": header,
        "msg_id": header["msg_id"],
        "msg_type": header["msg_type"],
        "parent_header": unpack(frames[2]),
        "metadata": unpack(frames[3]),
        "content": unpack(frames[4]),
        "buffers": [memoryview(buffer) for buffer in frames[5:]],
    }


def decode_headers(
    session: Session, frames: Sequence[Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify one message and decode only its header and parent header."""
    verify(session, frames)
    return session.unpack(frames[1]), session.unpack(frames[2])
