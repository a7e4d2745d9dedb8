"""jupyter_events schemas of jupyter_canvas (registered on the server's event_logger)."""

from __future__ import annotations

from pathlib import Path

#: The folder holding ``<name>/v<N>.yaml`` schema files.
SCHEMAS_PATH = Path(__file__).parent

#: The queue audit schema: who ran what, where, and how it ended (never code or outputs).
QUEUE_SCHEMA_ID = "https://events.jupyter.org/jupyter_canvas/queue/v1"
QUEUE_SCHEMA_PATH = SCHEMAS_PATH / "queue" / "v1.yaml"
