#!/usr/bin/env bash
# The benchmark in one command, from a fresh clone:
#   bash benchmarks/run.sh            # full run (about 20 minutes on 2 cores)
#   bash benchmarks/run.sh --quick    # about 3 minutes
# It makes a virtual environment of its own (benchmarks/.venv, or $BENCH_VENV) holding
# jupyter_canvas (editable: the working tree is what is measured) and what it is compared
# with (benchmarks/requirements.txt: jupyter-server-nbmodel, never a dependency of the
# package), then runs `python -m benchmarks` there with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BENCH_VENV:-benchmarks/.venv}
STAMP="$VENV/.bench-installed"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ benchmarks/requirements.txt -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e . -r benchmarks/requirements.txt
  touch "$STAMP"
fi
exec "$VENV/bin/python" -m benchmarks "$@"
