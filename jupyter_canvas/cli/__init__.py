"""``jupyter canvas …``: the command line of jupyter_canvas (``jupyter canvas run NOTEBOOK``).

- :mod:`.app`: the traitlets applications (options, exit codes);
- :mod:`.server`: which Jupyter server runs the notebook (a running one, or one started for
  the run) and a small HTTP and websocket client of it;
- :mod:`.progress`: the progress bar on a terminal, plain lines otherwise;
- :mod:`.run`: one run, from ``POST /api/queue`` to its RunReport.
"""
