"""The one owner of the notebook files jupyter_canvas reads and writes.

Every read and write of a notebook *file* that jupyter_canvas makes goes through
:class:`NotebookFiles` (outputs of server-run cells, canvas places, cell-id upgrades, widget
state…); nothing else in the package opens a notebook. It gives three guarantees:

- **One lock per file**, held across read-modify-write: two of our writers never interleave,
  and none of our readers meets a write of ours half-way.
- **Atomic writes.** With jupyter_server's file contents managers (``FileContentsManager``,
  ``AsyncFileContentsManager`` and subclasses) the new notebook is written to a temporary
  file in the same folder, flushed and fsynced, given the notebook's mode, renamed over the
  notebook and the folder fsynced: a reader, a ``kill -9`` or a power cut sees the complete
  old or the complete new notebook, never a torn or empty one. jupyter_server's own save
  rewrites the file in place (``use_atomic_writing`` only keeps a ``.~name`` backup), so a
  save of ours never goes through it. With any other contents manager, its ``save`` is used.
- **Never clobber someone else's change.** :meth:`NotebookFiles.update` notes the file's
  identity (inode, size, mtime; ``last_modified`` for other contents managers) before it
  reads, and looks again just before it renames: when the file changed meanwhile (an editor,
  git, JupyterLab's own save) it reads the new content and applies the change again onto it.
  A notebook deleted meanwhile is not re-created: the update answers 404.

Usage (get the server's one instance with :meth:`NotebookFiles.of`)::

    files = NotebookFiles.of(serverapp)
    model = await files.read(path)            # contents-manager model, ``model["content"]``
                                              # is an ``nbformat.NotebookNode``

    def set_outputs(nb):                      # called on a fresh copy, maybe more than once
        changed = False
        for cell in nb.cells:
            if cell.get("id") == cell_id:
                cell.outputs = outputs
                changed = True
        return changed                        # falsy: nothing to write

    result = await files.update(path, set_outputs)
    result.value, result.saved, result.last_modified

The change function may be a coroutine function. It must only change the notebook it is
given (it may run again on a re-read copy) and return a truthy value when there is something
to write. A notebook open for collaboration belongs to its live shared document (see
:mod:`jupyter_canvas.canvas.shared_notebook`): write there, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import secrets
import stat
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import nbformat
from jupyter_server.utils import ensure_async
from tornado import web

from ..serverdirs import pid_alive

T = TypeVar("T")

#: How many times an update re-reads a notebook that keeps changing under it.
MAX_ATTEMPTS = 5
#: Marks our temporary files (``.~<name>.<pid>.<random>.canvas-tmp``) so leftovers are found.
TMP_SUFFIX = ".canvas-tmp"

_instances: weakref.WeakKeyDictionary[Any, NotebookFiles] = weakref.WeakKeyDictionary()


class NotebookChanged(web.HTTPError):
    """The notebook kept changing on disk while we tried to write it (409)."""

    def __init__(self, path: str) -> None:
        super().__init__(409, f"{path!r} kept changing on disk; not written this time")


@dataclass(frozen=True)
class UpdateResult(Generic[T]):
    """What :meth:`NotebookFiles.update` did."""

    #: What the change function returned (on the copy that was written).
    value: T
    #: Whether the notebook was written.
    saved: bool
    #: The file's ``last_modified`` after the write (or as read, when nothing was written).
    last_modified: Any


class NotebookFiles:
    """Reads and writes notebook files: one lock per file, atomic, never clobbering."""

    def __init__(self, serverapp: Any, log: Any = None) -> None:
        self._serverapp = serverapp
        self.log = log if log is not None else serverapp.log
        #: path -> [lock, users]; an entry lives while someone holds or waits for the lock.
        self._locks: dict[str, list[Any]] = {}
        #: Folders whose leftover temporary files were looked for already.
        self._swept: set[str] = set()

    @classmethod
    def of(cls, serverapp: Any, log: Any = None) -> NotebookFiles:
        """The one instance of ``serverapp`` (created on first use)."""
        files = _instances.get(serverapp)
        if files is None:
            files = _instances[serverapp] = cls(serverapp, log)
        return files

    @property
    def contents_manager(self) -> Any:
        """The server's contents manager."""
        return self._serverapp.contents_manager

    # -- locking ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def locked(self, path: str) -> AsyncIterator[None]:
        """Hold the notebook's lock (reads and writes of ours take it)."""
        path = path.strip("/")
        slot = self._locks.get(path)
        if slot is None:
            slot = self._locks[path] = [asyncio.Lock(), 0]
        slot[1] += 1
        try:
            async with slot[0]:
                yield
        finally:
            slot[1] -= 1
            if slot[1] == 0 and self._locks.get(path) is slot:
                del self._locks[path]

    # -- reading ---------------------------------------------------------------------------

    async def read(self, path: str) -> dict[str, Any]:
        """The notebook's contents model, read from the file under its lock."""
        async with self.locked(path):
            return await self._get(path)

    async def _get(self, path: str) -> dict[str, Any]:
        cm = self.contents_manager
        for attempt in range(10):
            try:
                model = await ensure_async(
                    cm.get(path, content=True, type="notebook", format="json")
                )
                return model  # type: ignore[no-any-return]
            except web.HTTPError as err:
                # Someone else (JupyterLab's in-place save) is rewriting it: look again.
                if err.status_code != 400 or "Unreadable" not in str(err) or attempt == 9:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def read_text(self, path: str) -> str:
        """The notebook file's text as stored, under its lock (the model from :meth:`read`
        is what nbformat made of it: e.g. repeated cell ids renamed at random)."""
        async with self.locked(path):
            model = await ensure_async(
                self.contents_manager.get(path, content=True, type="file", format="text")
            )
        return str(model.get("content") or "")

    async def last_modified(self, path: str) -> Any:
        """The file's ``last_modified`` (a cheap look, no content)."""
        model = await ensure_async(self.contents_manager.get(path, content=False))
        return model.get("last_modified")

    # -- writing ---------------------------------------------------------------------------

    @overload
    async def update(self, path: str, change: Callable[[Any], Awaitable[T]]) -> UpdateResult[T]: ...

    @overload
    async def update(self, path: str, change: Callable[[Any], T]) -> UpdateResult[T]: ...

    async def update(self, path: str, change: Callable[[Any], Any]) -> UpdateResult[Any]:
        """Read the notebook, apply ``change`` to it and write it back, all under its lock.

        ``change`` gets the notebook (an ``nbformat.NotebookNode``) and returns a truthy value
        when it changed something to write. When the file changed on disk between our read
        and our write, the notebook is read again and ``change`` applied again (a few times,
        then :class:`NotebookChanged`). A notebook gone meanwhile answers 404, never re-created.
        """
        path = path.strip("/")
        async with self.locked(path):
            for _attempt in range(MAX_ATTEMPTS):
                before = await self._identity(path)
                model = await self._get(path)
                notebook = model["content"]
                value = change(notebook)
                if inspect.isawaitable(value):
                    value = await value
                if not value:
                    return UpdateResult(value, False, model.get("last_modified"))
                if await self._identity(path) != before:
                    self.log.info("jupyter_canvas: %s changed on disk; applying again", path)
                    continue
                last_modified = await self._save(path, notebook, before)
                if last_modified is _CHANGED:
                    continue
                return UpdateResult(value, True, last_modified)
            raise NotebookChanged(path)

    async def _identity(self, path: str) -> Any:
        """What tells us the file changed: ``(inode, size, mtime)`` or ``last_modified``."""
        os_path = self._os_path(path)
        if os_path is None:
            return await self.last_modified(path)
        try:
            st = await asyncio.to_thread(os.stat, os_path)
        except FileNotFoundError:
            raise web.HTTPError(404, f"no notebook at {path!r}") from None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def exists(self, path: str) -> bool:
        """Whether the notebook file exists (True when the contents manager is not a
        jupyter_server file one: only a read can tell)."""
        os_path = self._os_path(path)
        return os_path is None or os.path.isfile(os_path)

    def _os_path(self, path: str) -> str | None:
        """The file's real OS path with a jupyter_server file contents manager, else None."""
        from jupyter_server.services.contents.fileio import FileManagerMixin

        cm = self.contents_manager
        if not isinstance(cm, FileManagerMixin):
            return None
        return os.path.realpath(cm._get_os_path(path))

    async def _save(self, path: str, notebook: Any, before: Any) -> Any:
        cm = self.contents_manager
        model = {"type": "notebook", "format": "json", "content": notebook}
        os_path = self._os_path(path)
        if os_path is None or not os.access(os.path.dirname(os_path), os.W_OK):
            # Another contents manager (or a folder we may not create files in): its save.
            saved = await ensure_async(cm.save(model, path))
            return saved.get("last_modified")
        cm.run_pre_save_hooks(model=model, path=path)
        notebook = nbformat.from_dict(model["content"])
        cm.check_and_sign(notebook, path)
        text = await asyncio.to_thread(nbformat.writes, notebook, nbformat.NO_CONVERT)
        if not await asyncio.to_thread(self._replace, os_path, text, before):
            return _CHANGED
        self._sweep(os.path.dirname(os_path))
        with contextlib.suppress(Exception):
            if not await ensure_async(cm.checkpoints.list_checkpoints(path)):
                await ensure_async(cm.create_checkpoint(path))
        saved = await ensure_async(cm.get(path, content=False))
        cm.run_post_save_hooks(model=saved, os_path=os_path)
        self._keep_file_id(path)
        emit = getattr(cm, "emit", None)
        if emit is not None:
            emit(data={"action": "save", "path": path})
        return saved.get("last_modified")

    def _keep_file_id(self, path: str) -> None:
        """Our rename gave the notebook a new inode: tell jupyter_server_fileid's
        ``LocalFileIdManager`` (which tracks files by inode; its save handler looks the
        record up by inode and path, so it would lose the file id) about it."""
        manager = self._serverapp.web_app.settings.get("file_id_manager")
        if manager is None or not all(
            hasattr(manager, name) for name in ("con", "_normalize_path", "_stat", "_update")
        ):
            return
        try:
            with manager.con:
                row = manager.con.execute(
                    "SELECT id FROM Files WHERE path = ?", (manager._normalize_path(path),)
                ).fetchone()
                stat_info = manager._stat(manager._normalize_path(path))
                if row is not None and stat_info is not None:
                    manager._update(row[0], stat_info)
        except Exception as err:  # its private API changed: the id may be re-created
            self.log.debug("jupyter_canvas: could not update the file id of %s: %s", path, err)

    @staticmethod
    def _replace(os_path: str, text: str, before: Any) -> bool:
        """Write ``text`` next to ``os_path`` and rename it over; False when the file changed."""
        folder, name = os.path.split(os_path)
        tmp = os.path.join(folder, f".~{name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")
        data = text.encode("utf-8")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                st = os.stat(os_path)
            except FileNotFoundError:
                raise web.HTTPError(404, f"{os_path} was deleted; not re-created") from None
            if (st.st_ino, st.st_size, st.st_mtime_ns) != before:
                return False
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            with contextlib.suppress(OSError):
                os.chown(tmp, st.st_uid, st.st_gid)
            os.replace(tmp, os_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return True

    def _sweep(self, folder: str) -> None:
        """Remove temporary files that a server killed mid-write left in ``folder`` (once)."""
        if folder in self._swept:
            return
        self._swept.add(folder)
        if len(self._swept) > 10_000:
            self._swept.clear()
        try:
            names = os.listdir(folder)
        except OSError:
            return
        for name in names:
            if not (name.startswith(".~") and name.endswith(TMP_SUFFIX)):
                continue
            pid = name[: -len(TMP_SUFFIX)].rsplit(".", 2)[-2]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))


_CHANGED = object()
