"""Keeping the database busy during a file import: read ahead, write in parallel.

`ReadAhead` maps the next conversations from the files on a helper thread while the
writers work. `WriterPool` writes conversations on several threads, each with its own
database connection and its own transactions (still one per conversation), so while
one waits for PostgreSQL to insert and index, another prepares its rows; with one
writer it writes inline, which is what SQLite (one writer at a time) wants. Both are
bounded, so memory stays flat however large the import.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from django.db import connections

from conversations.importers.files import ThreadLoader
from conversations.importers.records import Problem, ThreadRecord

Job = TypeVar("Job")

_DONE = object()


class ReadAhead:
    """Reads and maps the next conversations on a helper thread. Database drivers release
    the GIL while the database works, so reading overlaps with writing. At most `depth`
    conversations wait in memory."""

    def __init__(self, loaders: list[tuple[str, str, ThreadLoader]], depth: int = 32) -> None:
        self._loaders = loaders
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="import-read-ahead", daemon=True)

    def _put(self, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for source, external_id, load in self._loaders:
                record, problems = load()
                if not self._put((source, external_id, record, problems)):
                    return
        except BaseException as exc:  # handed to the consuming thread, which re-raises it
            self._put(exc)
            return
        self._put(_DONE)

    def __enter__(self) -> Iterator[tuple[str, str, ThreadRecord, list[Problem]]]:
        self._thread.start()
        return self._items()

    def _items(self) -> Iterator[tuple[str, str, ThreadRecord, list[Problem]]]:
        while True:
            value = self._queue.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            yield value

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class WriterPool(Generic[Job]):
    """Runs `write(job)` on `size` threads; `submit` and `close` hand back finished
    (job, result) pairs for the calling thread to report. `write` must not raise."""

    def __init__(self, size: int, write: Callable[[Job], Any]) -> None:
        self._write = write
        self._size = max(1, size)
        self._tasks: queue.Queue[Any] = queue.Queue(maxsize=self._size * 2)
        self._results: queue.Queue[tuple[Job, Any]] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"import-writer-{n}", daemon=True)
            for n in range(self._size if self._size > 1 else 0)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        try:
            while (job := self._tasks.get()) is not _DONE:
                self._results.put((job, self._write(job)))
        finally:
            connections.close_all()  # this thread's connection

    def _drain(self) -> list[tuple[Job, Any]]:
        done = []
        while True:
            try:
                done.append(self._results.get_nowait())
            except queue.Empty:
                return done

    def submit(self, job: Job) -> list[tuple[Job, Any]]:
        if not self._threads:
            return [(job, self._write(job))]
        self._tasks.put(job)
        return self._drain()

    def close(self, *, discard_waiting: bool = False) -> list[tuple[Job, Any]]:
        """Finish (or, after an interruption, drop) the queued jobs and stop the threads."""
        if discard_waiting:
            while True:
                try:
                    self._tasks.get_nowait()
                except queue.Empty:
                    break
        for _ in self._threads:
            self._tasks.put(_DONE)
        for thread in self._threads:
            thread.join()
        return self._drain()
