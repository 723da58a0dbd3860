"""Stop a training loop cleanly on SIGTERM / Ctrl-C: the one signal handler of every trainer.

    with stop_on_signals(lambda name: stop.set()):
        for step in …:
            …
            if stop.is_set(): checkpoint(); break

SIGTERM (a scheduler's pre-emption notice) and the first Ctrl-C call ``request_stop(signal name)``: the loop finishes
its step, writes a checkpoint and stops. A second Ctrl-C raises ``KeyboardInterrupt`` at once. Outside the main
thread (where Python cannot install handlers) the block runs unchanged.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[str], None]) -> Iterator[None]:
    """Install the handlers for the block; the previous handlers are restored after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked = False

    def handler(signum: int, _frame: Any) -> None:
        nonlocal asked
        if asked and signum == signal.SIGINT:
            raise KeyboardInterrupt
        asked = True
        request_stop(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
