"""One worker thread feeding the event loop through a bounded hand-off.

PyAV blocks, so demuxing and transcoding run in their own threads. Both need the same
things: a cap on items waiting for the loop (the thread waits instead, which pushes back
on whatever feeds it), an end marker carrying the thread's error, and a stop that asks
the thread to finish and waits a bounded time for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
import contextlib
from dataclasses import dataclass
import logging
import threading
from typing import Final

_LOGGER = logging.getLogger(__name__)

# How often a waiting thread looks whether it was asked to stop.
THREAD_POLL: Final = 0.2

type ErrorDescriber = Callable[[Exception], str]


def describe_error(err: Exception) -> str:
    """The default account of why a worker failed."""
    return f"{type(err).__name__}: {err}"


@dataclass(frozen=True, slots=True)
class _End:
    error: str | None


class ThreadBridge[T]:
    """Runs ``work`` in a daemon thread; it hands items to the loop with :meth:`post`.

    ``work`` returns when it is done or when :attr:`stopping` turns true. If it raises,
    the consumer of :meth:`items` gets ``error_type(describe(exception))``.
    Must be created inside the running event loop it feeds.
    """

    def __init__(
        self,
        work: Callable[[], None],
        *,
        thread_name: str,
        max_pending: int,
        error_type: Callable[[str], Exception],
        describe: ErrorDescriber = describe_error,
    ) -> None:
        self._work = work
        self._error_type = error_type
        self._describe = describe
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T | _End] = asyncio.Queue()
        self._slots = threading.Semaphore(max_pending)
        self._stopping = threading.Event()
        self._finished: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    @property
    def stopping(self) -> bool:
        """True once :meth:`request_stop` was called; the thread should return."""
        return self._stopping.is_set()

    @property
    def alive(self) -> bool:
        """True while the worker thread runs."""
        return self._thread.is_alive()

    @property
    def queued(self) -> int:
        """Items the thread posted that the consumer has not taken yet."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    async def items(self) -> AsyncGenerator[T]:
        """What the thread posts, until it ends; raises ``error_type`` if it failed."""
        while True:
            item = await self._queue.get()
            self._slots.release()
            if isinstance(item, _End):
                if item.error is not None:
                    raise self._error_type(item.error)
                return
            yield item

    def request_stop(self) -> None:
        """Ask the thread to finish; items it has not posted yet are dropped."""
        self._stopping.set()

    async def stop(self, grace: float) -> bool:
        """Ask the thread to finish and wait up to ``grace`` seconds; False if it did not."""
        self._stopping.set()
        if self._thread.ident is None:
            return True  # never started
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._finished)
        except TimeoutError:
            _LOGGER.warning("%s did not stop in %.1f s", self._thread.name, grace)
            return False
        # Resolving the future is the thread's last act, so this join is immediate; it
        # makes "no thread left behind" exact for callers (and HA's test harness).
        self._thread.join(THREAD_POLL)
        return True

    # --- worker thread ------------------------------------------------------------------

    def post(self, item: T) -> bool:
        """Called by the worker: hand ``item`` over, waiting while too many are pending.

        False when the thread should stop instead (asked to, or the loop is gone).
        """
        return self._put(item)

    def _put(self, item: T | _End) -> bool:
        while not self._slots.acquire(timeout=THREAD_POLL):
            if self._stopping.is_set():
                return False
        if self._stopping.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:
            return False  # the event loop is closed
        return True

    def _run(self) -> None:
        error: str | None = None
        try:
            self._work()
        except Exception as err:  # PyAV raises many types; all end this worker
            error = self._describe(err)
        finally:
            if not self._stopping.is_set():
                self._put(_End(error))
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                self._loop.call_soon_threadsafe(_resolve, self._finished)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
