"""Kernel status: the life of the kernel process, what IOPub says, and why it died."""
