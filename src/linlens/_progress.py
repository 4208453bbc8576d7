"""Progress of long loops, reported to whoever listens: the library says how far it is, a command shows it.

A loop deep in the library (the bootstrap's resamples) calls :func:`report_progress`; nothing happens unless a
caller — a command that prints progress — has installed a listener with :func:`progress_to` around the call.
The listener is context-local (a ``ContextVar``), so threads and library users that install none are unaffected.

Example:
    >>> seen = []
    >>> with progress_to(lambda label, done, total: seen.append((label, done, total))):
    ...     for i in range(3):
    ...         report_progress("resamples", i + 1, 3)
    >>> seen[-1]
    ('resamples', 3, 3)
    >>> report_progress("resamples", 1, 3)  # no listener: nothing happens
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["progress_to", "report_progress"]

Listener = Callable[[str, int, int], None]
_LISTENER: ContextVar[Listener | None] = ContextVar("linlens_progress", default=None)


@contextmanager
def progress_to(listener: Listener) -> Iterator[None]:
    """Send :func:`report_progress` calls made inside the ``with`` block to ``listener(label, done, total)``.

    Example:
        >>> seen = []
        >>> with progress_to(lambda label, done, total: seen.append((label, done, total))):
        ...     report_progress("blocks", 1, 4)
        >>> report_progress("blocks", 2, 4)  # outside the block: nobody listens
        >>> seen
        [('blocks', 1, 4)]
    """
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def report_progress(label: str, done: int, total: int) -> None:
    """Tell the listener, if any, that ``done`` of ``total`` steps of ``label`` are finished.

    Example:
        >>> report_progress("nobody listens", 1, 2)  # a no-op without a listener
    """
    listener = _LISTENER.get()
    if listener is not None:
        listener(label, done, total)
