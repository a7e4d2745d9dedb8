"""Settings of the events websocket that ``CanvasApp`` does not already carry."""

from __future__ import annotations

from traitlets import Int
from traitlets.config import LoggingConfigurable

#: Where :mod:`jupyter_canvas.events.plugin` puts the settings on ``services.extras``.
EVENTS_SETTINGS_KEY = "events.settings"


class EventStreamSettings(LoggingConfigurable):
    """Bounds of each events-websocket connection (``c.EventStreamSettings.<trait>``).

    The count of events a connection may fall behind is ``CanvasApp.ws_send_buffer``.
    """

    send_buffer_bytes = Int(
        32 * 1024 * 1024,
        config=True,
        help="How many bytes of events may wait for one events-websocket client before it "
        "is dropped (it can reconnect with since=); 0 bounds by count only.",
    )
