"""Warm kernels: a pool of started, ready kernels per kernelspec (``CanvasApp.kernel_pool``).

A new notebook session (started by the queue or by JupyterLab: both call the server's
``kernel_manager.start_kernel``) takes a ready kernel of its kernelspec from the pool instead
of waiting for a new process, and the pool starts a replacement in the background.

Pooled kernels are started through the server's own kernel manager, so each is a real managed
kernel from the start: listed by ``GET /api/kernels``, culled by the server's culler like any
idle kernel (the pool notices and starts another), and shut down with the server. A kernel
is offered only once it answered a ``kernel_info_request``.

A pooled kernel starts in the server's root. When it is handed to a session of a notebook in
another folder, its working directory is changed to the notebook's folder (``os.chdir``,
run silently, for kernels whose language is Python) before it is handed over; other
languages get a cold kernel there. Requests that pass anything the pool cannot honour (a
``kernel_id``, arguments other than ``path``, ``kernel_name`` and ``env``) start a kernel
as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server.utils import ensure_async

#: Seconds a pooled kernel may take to answer before it is given up (and shut down).
READY_TIMEOUT = 60.0
#: Seconds to wait before starting again after a pooled kernel failed to start.
RETRY_DELAY = 5.0

StartKernel = Callable[..., Awaitable[str]]


class KernelPool:
    """Ready kernels per kernelspec name, handed out by ``start_kernel``."""

    def __init__(
        self, kernel_manager: Any, sizes: dict[str, int], log: logging.Logger | None = None
    ) -> None:
        self.kernel_manager = kernel_manager
        self.sizes = {name: int(size) for name, size in sizes.items() if int(size) > 0}
        self.log = log or logging.getLogger(__name__)
        self._ready: dict[str, deque[str]] = {name: deque() for name in self.sizes}
        self._starting: dict[str, int] = dict.fromkeys(self.sizes, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._original: StartKernel | None = None
        #: Called with each kernel once it is ready, before it is offered (the queue opens
        #: its client of the kernel then, so the first cell does not wait for it).
        self.prepare: Callable[[str], Awaitable[None]] | None = None
        self._closed = False
        #: How many sessions took a pooled kernel (for tests and diagnostics).
        self.taken = 0

    # -- wiring ------------------------------------------------------------------------------
    def install(self) -> None:
        """Put :meth:`start_kernel` in place of the kernel manager's own, and fill up."""
        if not self.sizes or self._original is not None:
            return
        self._original = self.kernel_manager.start_kernel
        self.kernel_manager.start_kernel = self.start_kernel
        for name in self.sizes:
            self.refill(name)

    async def stop(self) -> None:
        """Stop filling and shut the kernels still in the pool down (the server stops)."""
        self._closed = True
        # Kernels being started are let finish (then shut down): a start cancelled half-way
        # leaves the kernel manager holding a kernel it can no longer shut down.
        if self._tasks:
            _done, late = await asyncio.wait(list(self._tasks), timeout=READY_TIMEOUT)
            for task in late:
                task.cancel()
        for ready in self._ready.values():
            while ready:
                kernel_id = ready.popleft()
                with contextlib.suppress(Exception):
                    await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id, now=True))
        if self._original is not None:
            self.kernel_manager.start_kernel = self._original
            self._original = None

    def ready(self, name: str) -> list[str]:
        """The ids of the ready kernels of one kernelspec."""
        return [k for k in self._ready.get(name, ()) if k in self.kernel_manager]

    # -- handing out -------------------------------------------------------------------------
    async def start_kernel(
        self,
        *,
        kernel_id: str | None = None,
        path: str | None = None,
        **kwargs: Any,
    ) -> str:
        """The kernel manager's ``start_kernel``: a pooled kernel when one fits."""
        assert self._original is not None
        name = kwargs.get("kernel_name") or self.kernel_manager.default_kernel_name
        if kernel_id is None and not set(kwargs) - {"kernel_name", "env"}:
            taken = await self._take(name, path)
            if taken is not None:
                return taken
        return await self._original(kernel_id=kernel_id, path=path, **kwargs)

    async def _take(self, name: str, path: str | None) -> str | None:
        ready = self._ready.get(name)
        while ready:
            kernel_id = ready.popleft()
            if kernel_id not in self.kernel_manager:
                self.refill(name)
                continue  # culled or shut down while it waited
            moved = await self._move_to(kernel_id, path)
            if moved is None:
                ready.appendleft(kernel_id)  # it still fits a session in the root
                return None
            self.refill(name)
            if not moved:
                with contextlib.suppress(Exception):
                    await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id, now=True))
                return None
            self.taken += 1
            self.log.info("jupyter_canvas: a session took pooled %s kernel %s", name, kernel_id)
            return kernel_id
        return None

    async def _move_to(self, kernel_id: str, path: str | None) -> bool | None:
        """Give the kernel the working directory a kernel started for ``path`` would have.

        True: done (or nothing to do); False: it failed; None: not a Python kernel.
        """
        km = self.kernel_manager
        root = km.cwd_for_path("") if hasattr(km, "cwd_for_path") else None
        cwd = km.cwd_for_path(path) if path is not None and root is not None else root
        if cwd == root:
            return True
        kernel = km.get_kernel(kernel_id)
        language = ""
        with contextlib.suppress(Exception):
            language = str(kernel.kernel_spec.language or "").lower()
        if language != "python":
            return None
        client = kernel.client()
        try:
            started = client.start_channels()
            if inspect.isawaitable(started):
                await started
            code = f"import os as __os; __os.chdir({cwd!r}); del __os"
            msg_id = client.execute(code, silent=True, store_history=False)
            while True:
                reply = await asyncio.wait_for(client.get_shell_msg(), READY_TIMEOUT)
                if reply["parent_header"].get("msg_id") == msg_id:
                    return reply["content"].get("status") == "ok"  # type: ignore[no-any-return]
        except Exception as err:
            self.log.warning("jupyter_canvas: could not move pooled kernel %s: %s", kernel_id, err)
            return False
        finally:
            with contextlib.suppress(Exception):
                client.stop_channels()

    # -- filling -----------------------------------------------------------------------------
    def refill(self, name: str) -> None:
        """Start kernels in the background until the pool of ``name`` is full again."""
        if self._closed or name not in self.sizes:
            return
        missing = self.sizes[name] - len(self._ready[name]) - self._starting[name]
        for _ in range(max(missing, 0)):
            self._starting[name] += 1
            task = asyncio.get_running_loop().create_task(self._start_one(name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_one(self, name: str) -> None:
        assert self._original is not None
        kernel_id: str | None = None
        try:
            kernel_id = await self._original(kernel_name=name)
            await self._wait_ready(kernel_id)
            if self.prepare is not None:
                await self.prepare(kernel_id)
        except asyncio.CancelledError:
            self._starting[name] -= 1
            raise
        except Exception as err:
            self._starting[name] -= 1
            self.log.warning("jupyter_canvas: a pooled %s kernel did not start: %s", name, err)
            if kernel_id is not None:
                with contextlib.suppress(Exception):
                    await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id, now=True))
            await asyncio.sleep(RETRY_DELAY)
            self.refill(name)
            return
        self._starting[name] -= 1
        if self._closed:
            with contextlib.suppress(Exception):
                await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id, now=True))
            return
        self._ready[name].append(kernel_id)
        self.log.info("jupyter_canvas: pooled %s kernel %s is ready", name, kernel_id)

    async def _wait_ready(self, kernel_id: str) -> None:
        kernel = self.kernel_manager.get_kernel(kernel_id)
        client = kernel.client()
        try:
            started = client.start_channels()
            if inspect.isawaitable(started):
                await started
            await client.wait_for_ready(timeout=READY_TIMEOUT)
        finally:
            with contextlib.suppress(Exception):
                client.stop_channels()
