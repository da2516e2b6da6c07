"""Stopping background tasks when a cancel can be lost.

On Python 3.11 a cancel that arrives in the same loop turn as the awaited thing completes is
swallowed by ``asyncio.wait_for`` (it returns the result instead; 3.12 fixed it). redis-py
writes every command under ``asyncio.wait_for`` when a socket timeout is set (8.2's default
sets one), so a loop of Redis commands survived 163 of 300 cancels with redis-py 8.2.0 (87 of
300 with 6.4.0) on this machine, and ``task.cancel(); await task`` then waits forever: a CI
run hung on that.
:func:`cancel_and_wait` cancels again until the tasks end, and gives up (logged) rather than
hang. It lives here because both the router and the edge node (which imports the router's
agent) stop tasks this way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(
    *tasks: asyncio.Future[Any] | None,
    what: str = "background task",
    retry_s: float = 0.25,
    give_up_s: float = 10.0,
) -> bool:
    """Cancel ``tasks`` and wait for them to end, cancelling again every ``retry_s`` a task
    is still running; after ``give_up_s`` the rest are abandoned with an error logged.

    Returns True when every task ended. A task's own exception (other than the cancel) is
    logged, not raised: the caller is stopping. ``None`` entries are skipped.
    """
    pending = {t for t in tasks if t is not None}
    deadline = time.monotonic() + give_up_s
    rounds = 0
    while pending:
        for t in pending:
            t.cancel()
        if rounds:
            log.warning("%s ignored a cancel; cancelling it again (%d)", what, rounds)
        left = deadline - time.monotonic()
        if left <= 0:
            log.error("%s did not stop in %.1f s; abandoned", what, give_up_s)
            return False
        _, pending = await asyncio.wait(pending, timeout=min(retry_s, left))
        rounds += 1
    for task in tasks:
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.warning("%s ended with %r", what, task.exception())
    return True
