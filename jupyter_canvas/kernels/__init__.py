"""Kernels the extension manages beyond the queue: the warm pool (:mod:`.pool`)."""
