"""The ipywidgets of one kernel, as a front end sees them: state, buffers, Output capture.

:class:`WidgetTracker` follows the ``jupyter.widget`` comms a kernel opens (``comm_open``),
changes (``comm_msg`` ``update`` / ``echo_update`` with ``buffer_paths``) and closes
(``comm_close``), seen on its IOPub. From them it keeps:

- **the widget state** a notebook saves, in the format nbclient's ``store_widget_state`` and
  JupyterLab's "save widget state" write (``metadata.widgets``, see :meth:`WidgetTracker.state`);
- **Output-widget capture.** While an Output widget's model has ``msg_id`` set (Python's
  ``with out:``), what that execution outputs belongs to the widget: it goes into the model's
  ``outputs`` (``clear_output`` clears the widget, ``wait=True`` at the next output), never
  into the cell. A front end owns those outputs, so the new list is sent back to the kernel as
  an ``update`` (the kernel echoes it to every other front end: JupyterLab's live Output view
  shows it). Nested captures stack; the innermost wins, as in nbclient and JupyterLab.

Only executions the server itself sent are captured: a JupyterLab page that runs code itself
captures its own. The state is bounded (``max_bytes``): past it new state is not kept, with a
warning.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from ..outputs import OutputList

#: The comm target of ipywidgets models.
WIDGET_TARGET = "jupyter.widget"
#: ``metadata.widgets`` key of the saved state (``@jupyter-widgets/schema``).
WIDGET_STATE_MIMETYPE = "application/vnd.jupyter.widget-state+json"
_OUTPUT_MODEL = ("@jupyter-widgets/output", "OutputModel")

#: Sends ``(comm_msg content, parent header)`` to the kernel on its shell channel.
SendComm = Callable[[dict[str, Any], dict[str, Any]], None]
#: ``schedule(delay, callback)`` → a handle with ``cancel()`` (``loop.call_later``).
Schedule = Callable[[float, Callable[[], None]], Any]


def _size(value: Any) -> int:
    try:
        return len(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return 0


def _as_message(output: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """An nbformat output as the IOPub message that makes it (to rebuild an OutputList)."""
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text", "")
        return "stream", {"name": output.get("name", "stdout"), "text": "".join(text)}
    if kind in ("display_data", "execute_result", "error"):
        return str(kind), {k: v for k, v in output.items() if k != "output_type"}
    return None


class WidgetModel:
    """One widget model: its state, its binary buffers and, for an Output widget, its outputs."""

    __slots__ = ("buffers", "capturing", "key_sizes", "outputs", "pending_echo", "state")

    def __init__(self, state: dict[str, Any], stream_cap: int) -> None:
        self.state: dict[str, Any] = {}
        self.key_sizes: dict[str, int] = {}
        self.buffers: dict[tuple[Any, ...], dict[str, Any]] = {}
        #: The execution this Output widget captures ("" when none).
        self.capturing = ""
        #: Our own ``outputs`` updates the kernel has not echoed back yet.
        self.pending_echo = 0
        is_output = (state.get("_model_module"), state.get("_model_name")) == _OUTPUT_MODEL
        self.outputs: OutputList | None = OutputList(stream_cap=stream_cap) if is_output else None

    @property
    def size(self) -> int:
        """Approximate bytes held (JSON of the state plus the buffers' base64)."""
        return sum(self.key_sizes.values()) + sum(len(b["data"]) for b in self.buffers.values())

    def load_outputs(self, outputs: Any) -> None:
        """The kernel set ``outputs`` itself (``out.outputs = ()``, ``append_stdout``)."""
        assert self.outputs is not None
        self.outputs.clear()
        for output in outputs if isinstance(outputs, list | tuple) else ():
            message = _as_message(output) if isinstance(output, dict) else None
            if message is not None:
                self.outputs.apply(*message)


class WidgetTracker:
    """The ``jupyter.widget`` models of one kernel process (see the module docstring)."""

    #: Seconds captured outputs wait before they are sent back to the kernel.
    SYNC_DELAY = 0.05

    def __init__(
        self,
        send: SendComm,
        *,
        max_bytes: int = 32 * 1024 * 1024,
        stream_cap: int = 256 * 1024,
        schedule: Schedule,
        log: logging.Logger | None = None,
    ) -> None:
        self._send = send
        self.max_bytes = max_bytes
        self.stream_cap = stream_cap
        self.log = log or logging.getLogger(__name__)
        self._models: dict[str, WidgetModel] = {}
        #: msg_id → comm ids of the Output widgets capturing it, innermost last.
        self._captures: dict[str, list[str]] = {}
        self._bytes = 0
        self._warned = False
        #: Output widgets whose captured outputs the kernel has not been sent yet.
        self._unsent: dict[str, dict[str, Any]] = {}
        self._flush_handle: Any = None
        self._schedule = schedule

    def __len__(self) -> int:
        """How many widget models are open."""
        return len(self._models)

    @property
    def bytes(self) -> int:
        """Approximate bytes of state held."""
        return self._bytes

    # -- following the comms ---------------------------------------------------------------
    def observe(self, msg: dict[str, Any]) -> None:
        """Follow one IOPub message (anything but a widget comm message is ignored)."""
        msg_type = msg["header"]["msg_type"]
        if msg_type not in ("comm_open", "comm_msg", "comm_close"):
            return
        content = msg.get("content") or {}
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str):
            return
        if msg_type == "comm_close":
            self._close(comm_id)
            return
        data = content.get("data") or {}
        model = self._models.get(comm_id)
        if msg_type == "comm_open":
            if content.get("target_name") != WIDGET_TARGET or not isinstance(
                data.get("state"), dict
            ):
                return
            self._close(comm_id)
            model = self._models[comm_id] = WidgetModel(data["state"], self.stream_cap)
        elif model is None or data.get("method") not in ("update", "echo_update"):
            return  # not a widget of ours, or a custom message (no state)
        state = data.get("state")
        if isinstance(state, dict):
            echo = data.get("method") == "echo_update"
            self._update(model, state, echo)
            self._store_buffers(model, data.get("buffer_paths"), msg.get("buffers") or [])
            if "msg_id" in state and model.outputs is not None:
                self._set_capture(comm_id, model, state.get("msg_id") or "")

    def _update(self, model: WidgetModel, state: dict[str, Any], echo: bool) -> None:
        for key, value in state.items():
            if key == "outputs" and model.outputs is not None:
                if echo and model.pending_echo > 0:
                    # Our own update coming back: what we hold is as new or newer.
                    model.pending_echo -= 1
                    continue
                model.load_outputs(value)
                value = model.outputs.to_json()
            size = _size(value)
            grown = size - model.key_sizes.get(key, 0)
            if grown > 0 and self._bytes + grown > self.max_bytes:
                self._over_budget()
                continue
            model.state[key] = value
            model.key_sizes[key] = size
            self._bytes += grown

    def _store_buffers(self, model: WidgetModel, paths: Any, buffers: list[Any]) -> None:
        if not isinstance(paths, list):
            return
        for path, buffer in zip(paths, buffers, strict=False):
            if not isinstance(path, list):
                continue
            key = tuple(path)
            encoded = base64.b64encode(bytes(buffer)).decode("ascii")
            old = model.buffers.get(key)
            grown = len(encoded) - (len(old["data"]) if old else 0)
            if grown > 0 and self._bytes + grown > self.max_bytes:
                self._over_budget()
                continue
            model.buffers[key] = {"data": encoded, "encoding": "base64", "path": path}
            self._bytes += grown

    def _over_budget(self) -> None:
        if not self._warned:
            self._warned = True
            self.log.warning(
                "jupyter_canvas: widget state of a kernel passed %d bytes; further state is not "
                "kept, so a saved notebook may show older widget values",
                self.max_bytes,
            )

    def _set_capture(self, comm_id: str, model: WidgetModel, msg_id: str) -> None:
        if model.capturing:
            stack = self._captures.get(model.capturing, [])
            if comm_id in stack:
                stack.remove(comm_id)
            if not stack:
                self._captures.pop(model.capturing, None)
        model.capturing = msg_id
        if msg_id:
            self._captures.setdefault(msg_id, []).append(comm_id)

    def _close(self, comm_id: str) -> None:
        model = self._models.pop(comm_id, None)
        if model is None:
            return
        if model.capturing:
            self._set_capture(comm_id, model, "")
        self._bytes -= model.size

    # -- capture ---------------------------------------------------------------------------
    def capture(
        self, msg_id: str | None, msg_type: str, content: dict[str, Any], parent: dict[str, Any]
    ) -> bool:
        """Route an output message of execution ``msg_id`` into the Output widget capturing
        it; False when none does (it is the cell's). ``parent`` is the execution's header."""
        stack = self._captures.get(msg_id or "")
        if not stack or msg_type == "update_display_data":
            return False
        comm_id = stack[-1]
        model = self._models[comm_id]
        assert model.outputs is not None
        model.outputs.apply(msg_type, content)  # clear_output(wait=True) waits there
        if not (msg_type == "clear_output" and content.get("wait")):
            # Sent back to the kernel in batches: a loop printing into a widget must not
            # send its whole output again for every line.
            self._unsent[comm_id] = parent
            if self._flush_handle is None:
                self._flush_handle = self._schedule(self.SYNC_DELAY, self.flush)
        return True

    def flush(self) -> None:
        """Send the kernel the outputs captured since the last time (also at an entry's end)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        unsent, self._unsent = self._unsent, {}
        for comm_id, parent in unsent.items():
            model = self._models.get(comm_id)
            if model is None or model.outputs is None:
                continue
            outputs = model.outputs.to_json()
            self._update(model, {"outputs": outputs}, echo=False)
            model.pending_echo += 1
            self._send(
                {
                    "comm_id": comm_id,
                    "data": {"method": "update", "state": {"outputs": outputs}, "buffer_paths": []},
                },
                parent,
            )

    # -- saving ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any] | None:
        """``metadata.widgets`` for a notebook run on this kernel (None: no widget)."""
        models = {cid: m for cid, m in self._models.items() if "_model_name" in m.state}
        if not models:
            return None
        saved: dict[str, Any] = {}
        for comm_id, model in models.items():
            entry: dict[str, Any] = {
                "model_name": model.state.get("_model_name"),
                "model_module": model.state.get("_model_module"),
                "model_module_version": model.state.get("_model_module_version"),
                "state": dict(model.state),
            }
            if model.buffers:
                entry["buffers"] = list(model.buffers.values())
            if model.outputs is not None:
                entry["state"]["outputs"] = model.outputs.to_json()
            saved[comm_id] = entry
        return {WIDGET_STATE_MIMETYPE: {"state": saved, "version_major": 2, "version_minor": 0}}

    def reset(self) -> None:
        """The kernel process ended: its widgets are gone."""
        self._models.clear()
        self._captures.clear()
        self._bytes = 0
        self._warned = False
        self._unsent.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
