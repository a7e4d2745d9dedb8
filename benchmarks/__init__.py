"""Benchmarks: what a cell costs through jupyter_canvas against the other ways to run it.

Run ``python -m benchmarks`` (see :mod:`benchmarks.run`) or ``bash benchmarks/run.sh``.
"""
