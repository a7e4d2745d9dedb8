"""Server of the latency comparison: stock JupyterLab, without jupyter_canvas.

The same JupyterLab, kernels and collaboration packages as the main test server, with the
jupyter_canvas server extension off and its JupyterLab extension disabled (the page config
in ``JUPYTER_CONFIG_DIR/labconfig``, written by playwright.config.ts), so JupyterLab's own
cell executor runs cells through the page's kernel websocket. That websocket uses the same
TCP_NODELAY connection class the extension enables on its server, so both servers send
kernel messages the same way and only the execution paths differ.

!! Never use this configuration in production: it turns off authentication.
"""

import os

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 (provided by the config loader)

configure_jupyter_server(c)

c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = int(os.environ.get("JUPYTER_CANVAS_UI_STOCK_PORT", "8889"))
c.ServerApp.allow_root = True
c.ServerApp.jpserver_extensions.update({"jupyter_canvas": False})
c.ServerApp.kernel_websocket_connection_class = (
    "jupyter_canvas.kernel_websocket.NoDelayKernelWebsocketConnection"
)
