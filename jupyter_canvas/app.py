"""The jupyter_canvas server extension: its settings, its engines and its routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, Unicode

from ._version import __version__
from .base import SERVICES_KEY
from .events.bus import EventBus
from .kernel_websocket import enable_nodelay
from .kernels.pool import KernelPool
from .queue.blobs import BlobStore
from .queue.engine import ExecutionQueue
from .queue.journal import EntryJournal
from .queue.runs import RunRegistry
from .queue.spill import SpillStore
from .room_websocket import nodelay_rooms
from .status.lifecycle import KernelLifecycle


@dataclass
class CanvasConfig:
    """The settings the handlers read, copied from :class:`CanvasApp`'s traits."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_code_bytes: int = 1024 * 1024
    max_wait_seconds: float = 60.0
    ws_send_buffer: int = 10_000
    ws_ping_interval: float = 30.0


@dataclass
class CanvasServices:
    """The extension's engines, shared by its handlers through the tornado settings."""

    config: CanvasConfig
    bus: EventBus
    queue: ExecutionQueue
    lifecycle: KernelLifecycle
    #: Runs (one ``POST /api/queue`` each) and their reports.
    runs: RunRegistry = field(default_factory=RunRegistry)
    #: Warm kernels (``CanvasApp.kernel_pool``), None when no pool is configured.
    kernel_pool: KernelPool | None = None
    #: The notebook layer (``notebook.service.NotebookService``) once it is wired.
    notebooks: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


class CanvasApp(ExtensionApp):
    """Server-side execution queue, kernel status, server-owned outputs and canvas rooms."""

    name = "jupyter_canvas"
    version = __version__
    description = __doc__ or ""
    load_other_extensions = True

    max_queued_per_kernel = Int(
        1000, config=True, help="How many entries may wait in one kernel's queue (429 beyond)."
    )
    retain_finished = Int(
        1000, config=True, help="How many finished entries are kept for GET /api/queue."
    )
    retain_seconds = Float(
        3600.0,
        config=True,
        help="How long (seconds) a finished entry is kept; 0 keeps it until "
        "retain_finished pushes it out.",
    )
    kernel_ready_timeout = Float(
        60.0,
        config=True,
        help="How long (seconds) to wait for a kernel to answer before an entry fails.",
    )
    input_timeout = Float(
        0.0,
        config=True,
        help="Seconds an input() of a queued entry may wait for its answer; past it the kernel "
        "is interrupted and the entry ends error, 'timed out after N s waiting for input' "
        "(0: wait forever).",
    )
    widget_state_bytes = Int(
        32 * 1024 * 1024,
        config=True,
        help="Most bytes of ipywidgets state (and Output-widget outputs) kept per kernel for "
        "metadata.widgets; past it newer state is not kept (a warning is logged).",
    )
    event_buffer_size = Int(
        10_000, config=True, help="How many events the events websocket keeps for replay."
    )
    event_buffer_bytes = Int(
        64 * 1024 * 1024,
        config=True,
        help="Most bytes of encoded events kept for replay "
        "(the oldest are dropped first; a client asking for them gets a gap event).",
    )
    ws_send_buffer = Int(
        10_000,
        config=True,
        help="How many events may wait for one events-websocket client "
        "before it is dropped (it can reconnect with since=).",
    )
    stream_spill_limit = Int(
        256 * 1024 * 1024,
        config=True,
        help="Most characters of one cut stream kept in full "
        "on the server (GET api/queue/<id>/streams/<index>).",
    )
    retain_output_bytes = Int(
        64 * 1024 * 1024,
        config=True,
        help="Most bytes of outputs the finished entries hold in memory; past it the oldest "
        "finished entries are no longer retained first, as past retain_finished. "
        "The newest finished entry is always kept.",
    )
    blob_threshold_bytes = Int(
        1024 * 1024,
        config=True,
        help="A rich output whose MIME bundle is larger than this (characters) is kept once "
        "on disk, in the blob store; entries, events and the journal keep a reference "
        "(GET api/queue/<id>/outputs/<index> answers it whole; the notebook gets it whole).",
    )
    blob_store_bytes = Int(
        1024 * 1024 * 1024,
        config=True,
        help="Most bytes of large outputs kept on disk per server run (in the runtime "
        "directory); past it the least recently used are removed first.",
    )
    journal = Bool(
        True, config=True, help="Journal entries in SQLite so results answer after a restart."
    )
    journal_path = Unicode(
        "",
        config=True,
        help="The journal's SQLite file (default: jupyter_canvas/journal.sqlite "
        "in the server's data directory).",
    )
    journal_output_bytes = Int(
        1024 * 1024, config=True, help="Most bytes of one entry's outputs kept in the journal."
    )
    max_body_bytes = Int(
        10 * 1024 * 1024, config=True, help="Largest request body accepted (413 beyond)."
    )
    max_code_bytes = Int(
        1024 * 1024, config=True, help="Largest code of one entry accepted (413 beyond)."
    )
    kernel_websocket_nodelay = Bool(
        True,
        config=True,
        help="Set TCP_NODELAY on jupyter_server's kernel websockets (JupyterLab's path to a "
        "kernel), so small messages are not held ~40 ms for a delayed ACK: the extension puts "
        "a subclass of jupyter_server's connection class in place that changes nothing else. "
        "Not done when ServerApp.kernel_websocket_connection_class is configured. The "
        "collaboration rooms' websockets (where the outputs of cells the server runs reach "
        "the page) get TCP_NODELAY too.",
    )

    kernel_pool = Dict(
        value_trait=Int(),
        default_value={},
        config=True,
        help="Warm kernels: how many started, ready kernels to keep per kernelspec name, e.g. "
        '{"python3": 1}. A new notebook session (from the queue or JupyterLab) takes one and '
        "the pool starts a replacement in the background. Off (empty) by default: each pooled "
        "kernel is a running process.",
    )

    def initialize_settings(self) -> None:
        """Create the engines and put them where the handlers find them."""
        serverapp = self.serverapp
        assert serverapp is not None
        km = serverapp.kernel_manager
        bus = EventBus(self.event_buffer_size, self.event_buffer_bytes)
        queue = ExecutionQueue(
            km,
            bus,
            max_queued_per_kernel=self.max_queued_per_kernel,
            retain_finished=self.retain_finished,
            retain_seconds=self.retain_seconds,
            kernel_ready_timeout=self.kernel_ready_timeout,
            input_timeout=self.input_timeout,
            log=self.log,
        )
        # This server run's id: what it keeps on disk is under it (see serverdirs.py), and
        # the journal rows it writes carry it.
        self.run_id = uuid.uuid4().hex
        queue.widget_state_bytes = self.widget_state_bytes
        queue.spills = SpillStore(
            Path(serverapp.runtime_dir) / "jupyter_canvas" / "streams",
            self.stream_spill_limit,
            self.log,
            run_id=self.run_id,
        )
        queue.retain_output_bytes = self.retain_output_bytes
        queue.blobs = BlobStore(
            Path(serverapp.runtime_dir) / "jupyter_canvas" / "blobs",
            max_bytes=self.blob_store_bytes,
            threshold=self.blob_threshold_bytes,
            log=self.log,
            run_id=self.run_id,
        )
        if self.journal:
            journal_path = Path(
                self.journal_path or Path(serverapp.data_dir) / "jupyter_canvas" / "journal.sqlite"
            )
            queue.journal = EntryJournal(
                journal_path,
                retain_finished=self.retain_finished,
                retain_seconds=self.retain_seconds,
                max_output_bytes=self.journal_output_bytes,
                log=self.log,
                run_id=self.run_id,
            )
            queue.add_transition_hook(queue.journal.record)
        runs = RunRegistry(retain_finished=self.retain_finished, retain_seconds=self.retain_seconds)
        runs.journal = queue.journal
        queue.add_transition_hook(runs.on_transition)
        lifecycle = KernelLifecycle(km, log=self.log)
        lifecycle.add_listener(queue.on_lifecycle)
        queue.set_lifecycle_hint(lifecycle.emit)
        config = CanvasConfig(
            max_body_bytes=self.max_body_bytes,
            max_code_bytes=self.max_code_bytes,
            ws_send_buffer=self.ws_send_buffer,
        )
        self.services = CanvasServices(
            config=config, bus=bus, queue=queue, lifecycle=lifecycle, runs=runs
        )
        self.settings[SERVICES_KEY] = self.services
        # The server's event logger exists before extensions load: listen from the start so
        # no kernel action is missed.
        lifecycle.attach_event_logger(getattr(serverapp, "event_logger", None))

        for plugin in self._plugins():
            plugin.setup(self, self.services)

        if self.kernel_websocket_nodelay:
            enabled = enable_nodelay(serverapp, self.settings, self.log)
            if enabled is not None:
                self.log.info("jupyter_canvas: kernel websockets use %s", enabled.__name__)

    @staticmethod
    def _plugins() -> list[Any]:
        """The concerns that plug into the app, in the order they are wired."""
        from .canvas import plugin as canvas
        from .events import plugin as events
        from .notebook import plugin as notebook
        from .status import plugin as status

        return [events, status, notebook, canvas]

    def initialize_handlers(self) -> None:
        """Register every route of the extension (each concern lists its own)."""
        from .queue.handlers import default_handlers as queue_handlers

        # Concerns first: /api/queue/events must win over /api/queue/<id>.
        for plugin in self._plugins():
            self.handlers.extend(plugin.handlers())
        self.handlers.extend(queue_handlers)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Late wiring: things that exist only once every extension has loaded."""
        if self.services.queue.journal is not None:
            closed = await self.services.queue.journal.open()
            if closed:
                self.log.info(
                    "jupyter_canvas: %d entries were open when the server stopped: cancelled",
                    closed,
                )
        km = serverapp.kernel_manager
        for kernel_id in list(km.list_kernel_ids()):
            self.services.lifecycle.hook_restarter(kernel_id)
        for plugin in self._plugins():
            await plugin.start(self, self.services)
        if self.kernel_pool:
            self.services.kernel_pool = KernelPool(km, self.kernel_pool, log=self.log)
            self.services.kernel_pool.prepare = self.services.queue.prepare
            self.services.kernel_pool.install()
        if self.kernel_websocket_nodelay:
            # Outputs of cells the server runs reach the page through the rooms.
            swapped = nodelay_rooms(serverapp.web_app)
            if swapped:
                self.log.info("jupyter_canvas: collaboration room websockets use TCP_NODELAY")

    async def stop_extension(self) -> None:
        """Cancel what is queued and close our clients, then let each concern flush.

        Runs before the server shuts its kernels down, so outputs already received reach
        the notebooks first.
        """
        if self.services.kernel_pool is not None:
            await self.services.kernel_pool.stop()
        await self.services.queue.shutdown("server stopped")
        for plugin in reversed(self._plugins()):
            await plugin.stop(self, self.services)
        if self.services.queue.journal is not None:
            await self.services.queue.journal.close()
        if self.services.queue.spills is not None:
            self.services.queue.spills.close()
        if self.services.queue.blobs is not None:
            self.services.queue.blobs.close()


main = launch_new_instance = CanvasApp.launch_instance
