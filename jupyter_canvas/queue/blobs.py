"""Large outputs, kept once on disk instead of in memory: a content-addressed blob store.

A rich output (``display_data``, ``execute_result``) whose MIME values add up to more than
the threshold (``CanvasApp.blob_threshold_bytes``) is encoded once as JSON, named by the
sha256 of those bytes and written to ``<runtime dir>/jupyter_canvas/blobs/<run id>/<sha256>``
(in a worker thread: the event loop never waits on the disk). The entry keeps a *reference*
in its place: the same output with every large MIME value replaced by a one-line stub, and
``metadata.jupyter_canvas`` naming the blob::

    {"output_type": "display_data",
     "data": {"text/plain": "[jupyter_canvas: 52428800 characters kept on the server:
                              GET api/queue/<id>/outputs/0]"},
     "metadata": {"jupyter_canvas": {"blob": "<sha256>", "bytes": 52428812,
                                     "url": "api/queue/<id>/outputs/0"}}}

``GET api/queue/<id>/outputs/<index>`` answers the whole output (the blob's bytes as they
were stored), and the notebook writer puts the whole output into the notebook file and the
live document. Identical outputs are stored once. The store is bounded in bytes
(``CanvasApp.blob_store_bytes``): past it, the least recently used blobs (stored or read)
are removed first, as nteract's blob store cleans up; a reference to a removed blob answers
404. Each server run has its own directory (see :mod:`jupyter_canvas.serverdirs`), removed
when the server stops; those of dead servers are removed by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..serverdirs import ServerDir

#: The key in an output's ``metadata`` that holds its blob reference.
REF_KEY = "jupyter_canvas"
#: MIME values longer than this (characters) are replaced by a stub in a reference.
STUB_KEEP = 1024
#: Output types that can be offloaded (streams are capped and spilled instead).
RICH_TYPES = frozenset({"display_data", "execute_result", "update_display_data"})

#: Given an output's index and the output, what the entry keeps (the output or a reference).
Offload = Callable[[int, dict[str, Any]], dict[str, Any]]


def value_size(value: Any) -> int:
    """The size of one MIME value, in characters (JSON text for what is not a string)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return sum(len(item) for item in value)
    try:
        return len(json.dumps(value))
    except (TypeError, ValueError):
        return 0


def data_size(output: dict[str, Any]) -> int:
    """The size of an output's MIME bundle (0 for outputs without one)."""
    data = output.get("data")
    if not isinstance(data, dict):
        return 0
    return sum(value_size(value) for value in data.values())


def outputs_size(outputs: list[dict[str, Any]]) -> int:
    """About how many bytes a list of outputs holds (their JSON text)."""
    total = 0
    for output in outputs:
        try:
            total += len(json.dumps(output))
        except (TypeError, ValueError):
            total += data_size(output)
    return total


def reference_of(output: dict[str, Any]) -> dict[str, Any] | None:
    """The blob reference an output carries (None: it is whole)."""
    metadata = output.get("metadata")
    if not isinstance(metadata, dict):
        return None
    ref = metadata.get(REF_KEY)
    if isinstance(ref, dict) and isinstance(ref.get("blob"), str):
        return ref
    return None


def encode(output: dict[str, Any]) -> bytes:
    """The bytes an output is stored (and served) as: compact JSON, UTF-8."""
    return json.dumps(output, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def stub(output: dict[str, Any], url: str, sha: str | None, size: int) -> dict[str, Any]:
    """A reference to ``output``: large MIME values replaced by a line naming ``url``."""
    data = output.get("data")
    small: dict[str, Any] = {}
    if isinstance(data, dict):
        for mime, value in data.items():
            length = value_size(value)
            small[mime] = (
                value
                if length <= STUB_KEEP
                else f"[jupyter_canvas: {length} characters kept on the server: GET {url}]"
            )
    ref: dict[str, Any] = {"bytes": size, "url": url}
    if sha is not None:
        ref["blob"] = sha
    metadata = output.get("metadata")
    new = dict(output)
    new["data"] = small
    new["metadata"] = {**(metadata if isinstance(metadata, dict) else {}), REF_KEY: ref}
    return new


class BlobStore:
    """The blobs of this server run, bounded in bytes, least recently used removed first."""

    def __init__(
        self,
        base: Path,
        *,
        max_bytes: int,
        threshold: int,
        log: logging.Logger | None = None,
        run_id: str = "",
    ) -> None:
        self.owned = ServerDir(base, run_id or uuid.uuid4().hex)
        self.directory = self.owned.claim()
        self.max_bytes = max_bytes
        #: Outputs whose MIME bundle is larger than this (characters) are offloaded.
        self.threshold = threshold
        self.log = log or logging.getLogger(__name__)
        #: sha256 -> size in bytes, least recently used first.
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self.total = 0
        #: Blobs not yet on disk (their bytes), and the task writing them.
        self._pending: dict[str, bytes] = {}
        self._task: asyncio.Task[None] | None = None

    # -- storing ------------------------------------------------------------------------
    def large(self, output: dict[str, Any]) -> bool:
        """Whether ``output`` goes to the store."""
        return output.get("output_type") in RICH_TYPES and data_size(output) > self.threshold

    def offloader(self, entry_id: str) -> Offload:
        """What one entry's :class:`~jupyter_canvas.outputs.OutputList` keeps of an output."""

        def offload(index: int, output: dict[str, Any]) -> dict[str, Any]:
            if not self.large(output):
                return output
            return self.put(output, f"api/queue/{entry_id}/outputs/{index}")

        return offload

    def put(self, output: dict[str, Any], url: str) -> dict[str, Any]:
        """Store ``output`` (once per content) and return the reference to keep."""
        data = encode(output)
        sha = hashlib.sha256(data).hexdigest()
        if sha in self._sizes:
            self._sizes.move_to_end(sha)
        else:
            self._sizes[sha] = len(data)
            self.total += len(data)
            self._pending[sha] = data
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._write_pending())
            self._evict(keep=sha)
        return stub(output, url, sha, len(data))

    def event_output(self, entry_output: dict[str, Any] | None, output: dict[str, Any]) -> dict:
        """What an output event carries: ``output``, or a reference when it is large.

        ``entry_output`` is what the entry kept of it (its reference, when it has one).
        """
        if not self.large(output):
            return output
        if entry_output is not None and reference_of(entry_output) is not None:
            if entry_output.get("output_type") == output.get("output_type"):
                return dict(entry_output)
        return stub(output, "", None, data_size(output))

    def _evict(self, keep: str) -> None:
        while self.total > self.max_bytes and len(self._sizes) > 1:
            sha, size = next(iter(self._sizes.items()))
            if sha == keep:
                self._sizes.move_to_end(sha)
                continue
            del self._sizes[sha]
            self.total -= size
            if self._pending.pop(sha, None) is None:
                with contextlib.suppress(OSError):
                    (self.directory / sha).unlink()

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                sha = next(iter(self._pending))
                data = self._pending[sha]
                try:
                    await asyncio.to_thread(_write, self.directory, sha, data)
                except OSError as err:
                    self.log.warning("jupyter_canvas: could not store output %s: %s", sha, err)
                    self.total -= self._sizes.pop(sha, 0)
                if self._pending.get(sha) is data:
                    del self._pending[sha]
                if sha not in self._sizes:  # evicted while it was being written
                    with contextlib.suppress(OSError):
                        (self.directory / sha).unlink()
        finally:
            self._task = None

    # -- reading ------------------------------------------------------------------------
    def has(self, sha: str) -> bool:
        """Whether the blob is (still) in the store."""
        return sha in self._sizes

    async def read(self, sha: str) -> bytes | None:
        """The blob's bytes (None: removed, or not of this server run)."""
        if sha not in self._sizes:
            return None
        self._sizes.move_to_end(sha)
        pending = self._pending.get(sha)
        if pending is not None:
            return pending
        try:
            return await asyncio.to_thread((self.directory / sha).read_bytes)
        except OSError:
            return None

    async def path_of(self, sha: str) -> Path | None:
        """The blob's file once it is on disk (None: removed, or not of this server run)."""
        if sha not in self._sizes:
            return None
        self._sizes.move_to_end(sha)
        while sha in self._pending and self._task is not None:
            await asyncio.shield(self._task)
        return self.directory / sha if sha in self._sizes else None

    async def whole(self, output: dict[str, Any]) -> dict[str, Any]:
        """The whole output a reference stands for (the reference itself when the blob is
        gone, without the reference in its metadata)."""
        ref = reference_of(output)
        if ref is None:
            return output
        data = await self.read(ref["blob"])
        if data is None:
            self.log.warning("jupyter_canvas: output %s is no longer kept", ref["blob"])
            metadata = {k: v for k, v in output["metadata"].items() if k != REF_KEY}
            return {**output, "metadata": metadata}
        whole: dict[str, Any] = json.loads(data.decode("utf-8", "surrogatepass"))
        return whole

    def close(self) -> None:
        """Remove this server run's blobs (it is stopping: nothing can fetch them)."""
        if self._task is not None:
            self._task.cancel()
        self._pending.clear()
        self._sizes.clear()
        self.total = 0
        self.owned.release()


def _write(directory: Path, sha: str, data: bytes) -> None:
    """Write a blob to a temporary file and rename it into place (never a torn blob)."""
    target = directory / sha
    if target.exists():
        return
    temp = directory / f".{sha}.{uuid.uuid4().hex}.tmp"
    try:
        with temp.open("wb") as handle:
            handle.write(data)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
