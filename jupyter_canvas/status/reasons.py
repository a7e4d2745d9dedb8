"""Reasons in words a user can act on, built from what the server reports."""

from __future__ import annotations

import re
from typing import Any

#: What can be wrong with a kernelspec's command: how the error names the command, what is
#: wrong with it, and what to do (``{command}`` is the command).
_COMMAND_PROBLEMS = (
    (
        re.compile(r"No such file or directory: '([^']+)'"),
        "was not found",
        "Install {command!r} or put it on the server's PATH, or fix the kernelspec's argv.",
    ),
    (
        re.compile(r"Permission denied: '([^']+)'"),
        "is not executable",
        "Make it executable (chmod +x) or fix the kernelspec's argv.",
    ),
)


def _kernelspec_file(kernel_spec_manager: Any, kernel_name: str | None) -> str | None:
    """Where the kernelspec of ``kernel_name`` lives, if the spec manager can tell."""
    if kernel_spec_manager is None or not kernel_name:
        return None
    try:
        spec = kernel_spec_manager.get_kernel_spec(kernel_name)
    except Exception:
        return None
    resource_dir = getattr(spec, "resource_dir", None)
    return f"{resource_dir}/kernel.json" if resource_dir else None


def describe_start_failure(
    kernel_name: str | None, message: str, kernel_spec_manager: Any = None
) -> str:
    """Say why a kernel could not start, naming what to fix.

    ``message`` is the server's error text (``str(exception)``), e.g.
    ``[Errno 2] No such file or directory: 'julia'`` when the kernelspec's command is
    not installed.
    """
    name = repr(kernel_name) if kernel_name else "(unnamed)"
    message = message.strip() or "no error message"
    where = _kernelspec_file(kernel_spec_manager, kernel_name)
    spec_hint = f" (argv in {where})" if where else ""

    for pattern, problem, fix in _COMMAND_PROBLEMS:
        found = pattern.search(message)
        if found:
            command = found.group(1)
            return (
                f"kernel {name} failed to start: its command {command!r} {problem}"
                f"{spec_hint}. {fix.format(command=command)} ({message})"
            )
    if "No such kernel" in message or "NoSuchKernel" in message:
        return (
            f"kernel {name} failed to start: there is no kernelspec of that name. "
            f"`jupyter kernelspec list` shows the installed ones. ({message})"
        )
    return f"kernel {name} failed to start: {message}"


def describe_exit(exit_code: int | None) -> str:
    """Say how a kernel process ended, when nothing restarts it."""
    if exit_code is None:
        return "the kernel process is gone"
    if exit_code < 0:
        return f"the kernel process was killed by signal {-exit_code}"
    return f"the kernel process exited with code {exit_code}"
