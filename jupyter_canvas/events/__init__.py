"""One numbered stream of queue, output and kernel events for the whole server."""
