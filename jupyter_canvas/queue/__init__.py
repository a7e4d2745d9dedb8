"""The execution queue: entries, the per-kernel FIFO engine and its REST handlers."""
