"""The events websocket's prebuilt frames are what a websocket client parses."""

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from jupyter_canvas.events.bus import EventBus, websocket_text_frame


def parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("incomplete frame")


# Each length form of RFC 6455 (7-bit, 16-bit, 64-bit) and both sides of each limit,
# with multi-byte characters so bytes and characters differ.
@pytest.mark.parametrize("size", [0, 5, 125, 126, 200, 65535, 65536, 70000])
def test_frame_round_trips(size: int) -> None:
    text = "é" * (size // 2) + "a" * (size % 2)
    frame = parse(websocket_text_frame(text))
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert bytes(frame.data).decode("utf-8") == text


def test_frame_is_built_once_per_event() -> None:
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()
    bus.publish({"type": "x"})
    event = first._pending[0]
    assert second._pending[0] is event
    assert event.frame is event.frame
    assert bytes(parse(event.frame).data).decode() == event.text == '{"seq":1,"type":"x"}'
