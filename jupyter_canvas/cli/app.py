"""``jupyter canvas`` and ``jupyter canvas run NOTEBOOK`` (traitlets applications).

Exit status of ``run``: 0 the run ended ``ok``; 1 it ended ``error`` or ``cancelled`` (or the
server failed); 2 bad usage (a bad option, a missing notebook, an unreachable server, a wrong
token); 130 interrupted with Ctrl-C (the run is cancelled on the server first).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from jupyter_core.application import JupyterApp, base_aliases, base_flags
from traitlets import Bool, Float, Unicode

from .._version import __version__
from .run import EXIT_INTERRUPTED, EXIT_USAGE, NotebookRun, RunOptions, parse_select
from .server import CommandError, EmbeddedServer, ServerClient, find_server

_run_aliases = dict(base_aliases)
_run_aliases.update(
    {
        "url": "RunApp.url",
        "token": "RunApp.token",
        "select": "RunApp.select",
        "timeout": "RunApp.timeout",
    }
)
_run_flags = dict(base_flags)
_run_flags.update(
    {
        "allow-stdin": (
            {"RunApp": {"allow_stdin": True}},
            "Let input() wait for an answer (through the server) instead of raising at once.",
        ),
        "stream": ({"RunApp": {"stream": True}}, "Print the cells' outputs as they come."),
        "json": ({"RunApp": {"json": True}}, "Print the RunReport (JSON) on stdout at the end."),
    }
)


class RunApp(JupyterApp):
    """Run a notebook through a Jupyter server's queue, with a progress bar."""

    name = "jupyter-canvas-run"
    version = __version__
    description = """Run a notebook's code cells on a Jupyter server's execution queue.

    Through the running server whose root holds the notebook (as `jupyter server list` shows
    them), the one named by --url/--token, or else a server started for the run. Progress
    goes to stderr (a bar on a terminal, a line per cell otherwise); --json prints the
    RunReport on stdout. Exit status: 0 ok, 1 error or cancelled, 2 bad usage, 130 Ctrl-C.
    """
    examples = """
    jupyter canvas run analysis.ipynb
    jupyter canvas run analysis.ipynb --select=from:a1b2 --timeout=600 --json
    jupyter canvas run sub/report.ipynb --url=http://localhost:8888/ --token=abc --stream
    """
    aliases = _run_aliases
    flags = _run_flags

    url = Unicode("", config=True, help="The Jupyter server's URL (default: find one).")
    token = Unicode("", config=True, help="The server's token (with --url).")
    select = Unicode(
        "all",
        config=True,
        help="Which cells: all, from:<cell id>, group:<heading cell id>, or cell ids a,b,c.",
    )
    timeout = Float(0.0, config=True, help="Seconds each cell may run (0: no limit).")
    allow_stdin = Bool(False, config=True, help="Let input() wait for an answer.")
    stream = Bool(False, config=True, help="Print outputs as they come.")
    json = Bool(False, config=True, help="Print the RunReport on stdout.")

    exit_status = 0

    def start(self) -> None:
        """Run the notebook named by the one positional argument."""
        if len(self.extra_args) != 1:
            self._fail(
                "give exactly one notebook: jupyter canvas run NOTEBOOK [options]"
                + (f" (got {len(self.extra_args)})" if self.extra_args else ""),
                EXIT_USAGE,
            )
        try:
            client, options, embedded = self._target(self.extra_args[0])
            self.exit_status = asyncio.run(self._main(client, options, embedded))
        except CommandError as err:
            self._fail(err.message, err.status)
        self.exit(self.exit_status)

    def _fail(self, message: str, status: int) -> None:
        sys.stderr.write(f"jupyter canvas run: {message}\n")
        sys.stderr.flush()
        self.exit(status)

    def _options(self, path: str) -> RunOptions:
        select, cell_ids = parse_select(self.select)
        if self.timeout < 0:
            raise CommandError(
                f"--timeout must be 0 (no limit) or more seconds, got {self.timeout:g}"
            )
        return RunOptions(
            path=path,
            select=select,
            cell_ids=cell_ids,
            timeout=self.timeout or None,
            allow_stdin=self.allow_stdin,
            stream=self.stream,
            json=self.json,
        )

    def _target(
        self, notebook: str
    ) -> tuple[ServerClient | None, RunOptions, EmbeddedServer | None]:
        """Where the notebook runs: a client of a server, or a server to start for it."""
        if self.url:
            # The notebook is named as the server sees it: a path under its root.
            path = notebook[2:] if notebook.startswith("./") else notebook
            return ServerClient(self.url, self.token), self._options(path), None
        local = Path(notebook)
        if not local.is_file():
            raise CommandError(f"no notebook at {notebook}")
        found = find_server(local, self.runtime_dir)
        if found is not None:
            info, relative = found
            return ServerClient(info["url"], info.get("token", "")), self._options(relative), None
        return None, self._options(local.name), EmbeddedServer(local.resolve().parent)

    async def _main(
        self, client: ServerClient | None, options: RunOptions, embedded: EmbeddedServer | None
    ) -> int:
        try:
            if embedded is not None:
                sys.stderr.write("no Jupyter server runs here: starting one for the run\n")
                await embedded.start()
                client = ServerClient(embedded.url, embedded.token)
            assert client is not None
            await client.check()
            return await self._run(client, options)
        finally:
            if embedded is not None:
                await embedded.stop()

    async def _run(self, client: ServerClient, options: RunOptions) -> int:
        run = NotebookRun(client, options)
        task = asyncio.ensure_future(run.execute())
        loop = asyncio.get_running_loop()
        interrupted = asyncio.Event()
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
        try:
            stop = asyncio.ensure_future(interrupted.wait())
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if task.done():
                return task.result()
            # Ctrl-C: cancel the run on the server, then say so.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if run.progress is not None:
                run.progress.clear()
            cancelled = await run.cancel()
            sys.stderr.write(
                f"interrupted: cancelled run {run.run_id} on the server "
                f"({cancelled} cell(s) were still queued or running)\n"
                if run.run_id
                else "interrupted before the run was queued: nothing was run\n"
            )
            return EXIT_INTERRUPTED
        finally:
            loop.remove_signal_handler(signal.SIGINT)


class CanvasCommand(JupyterApp):
    """``jupyter canvas``: the command line of jupyter_canvas."""

    name = "jupyter-canvas"
    version = __version__
    description = "jupyter_canvas from the command line. Subcommands: run."
    subcommands = {
        "run": (RunApp, RunApp.description.splitlines()[0]),
    }

    def start(self) -> None:
        """Run the subcommand, or say which there are."""
        if self.subapp is not None:
            self.subapp.start()
            return
        sys.stderr.write("jupyter canvas: give a subcommand: run (jupyter canvas run --help)\n")
        self.exit(EXIT_USAGE)


main = launch_new_instance = CanvasCommand.launch_instance

if __name__ == "__main__":
    main()
