"""Server of the browser tests: JupyterLab with jupyter_canvas, in a throwaway root.

!! Never use this configuration in production: it turns off authentication.
"""

import os

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 (provided by the config loader)

configure_jupyter_server(c)

# A port of our own (the tests and pytest pass JUPYTER_CANVAS_UI_PORT), loopback only.
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = int(os.environ.get("JUPYTER_CANVAS_UI_PORT", "8888"))
c.ServerApp.allow_root = True
c.ServerApp.jpserver_extensions.update({"jupyter_canvas": True})
# A kernel that dies is dead at once (no automatic restart), so the status bar shows why.
c.KernelRestarter.restart_limit = 0
