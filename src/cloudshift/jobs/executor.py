"""Where a kind's work runs: the seam between a job's coordinator and its workers.

A coordinator (the object engine) cuts its job into pieces of work and hands them to an
:class:`Executor`; outcomes come back to it, and only it records them in the journal. What
runs a piece is a :class:`Task`: a callable that turns one piece into outcomes. A task and
its pieces are plain data (a task names its stores by description, never by live client),
so an executor may run them in this process, as :class:`ThreadExecutor` does, or ship them
to other machines, as the Ray executor of the petabyte issue will, without the coordinator
changing.

The contract both sides keep:

- a task yields an outcome for every item of a piece, whatever happens to the item (an
  error is an outcome), possibly in several lists as they finish, in the piece's order; so
  the coordinator can count what is in flight by counting items;
- should a task raise all the same (it could not open its stores, say), the executor asks it
  for the outcomes it still owes (:meth:`Task.failed`: the items after those it reported,
  each failed with the one-line reason), so the coordinator never waits for an item in vain;
- :meth:`Executor.collect` waits up to ``timeout`` for outcomes and returns all that are
  ready (an empty list when none came); should a task not even say what it owes (its
  :meth:`Task.failed` raised, or it has none), ``collect`` raises :class:`LostWork` once,
  after the outcomes that came before it, so the coordinator fails the run rather than
  wait for those items forever;
- :meth:`Executor.cancel` asks running pieces to stop soon (:meth:`Task.cancel`); their
  items still come back, as the task reports them (interrupted, failed...);
- :meth:`Executor.shutdown` frees the workers: ``wait=True`` waits for every piece submitted,
  started or not; ``wait=False`` drops pieces not yet started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from typing import Generic, Protocol, TypeVar

from cloudshift.core.errors import CloudshiftError
from cloudshift.core.redact import describe

W = TypeVar("W")
O = TypeVar("O")  # noqa: E741 - the outcome type, beside W for work
W_contra = TypeVar("W_contra", contravariant=True)
O_co = TypeVar("O_co", covariant=True)


class Task(Protocol[W_contra, O_co]):
    def __call__(self, work: W_contra, /) -> Iterable[Sequence[O_co]]:
        """Do one piece of work, yielding its outcomes as they are ready."""
        ...

    def failed(self, work: W_contra, reported: int, reason: str, /) -> Sequence[O_co]:
        """The outcomes of a piece that raised after reporting its first ``reported`` items:
        each later item failed with ``reason``."""
        ...

    def cancel(self) -> None:
        """Make pieces running in this process stop soon."""
        ...


class Executor(Protocol[W_contra, O_co]):
    def submit(self, work: W_contra) -> None: ...

    def collect(self, timeout: float) -> Sequence[O_co]: ...

    def cancel(self) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...


class LostWork(RuntimeError):
    """A piece raised and its task could not report its items: they will never come back."""


def reason(exc: BaseException) -> str:
    """One line for an error, prefixed by its type unless it is one of ours (a bug, or an
    unmapped error, says what it is)."""
    text = describe(exc)
    return text if isinstance(exc, CloudshiftError) else f"{type(exc).__name__}: {text}"


# How a coordinator gets an executor: for a task, with at most ``workers`` pieces at once.
ExecutorFactory = Callable[[Task[W, O], int], Executor[W, O]]


class ThreadExecutor(Generic[W, O]):
    """Pieces run on a pool of threads of this process; their outcomes go to one queue.

    One queue rather than a future per piece: ``concurrent.futures.wait()`` re-arms a waiter
    on every pending future per call, which costs more than copying a small object.
    """

    def __init__(self, task: Task[W, O], workers: int, name: str = "cloudshift") -> None:
        self._task = task
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._outcomes: SimpleQueue[Sequence[O] | LostWork] = SimpleQueue()
        self._lost: LostWork | None = None

    def submit(self, work: W) -> None:
        self._pool.submit(self._run, work)

    def _run(self, work: W) -> None:
        reported = 0
        try:
            for outcomes in self._task(work):
                self._outcomes.put(outcomes)
                reported += len(outcomes)
        except BaseException as exc:  # an unread future would keep its items in flight
            try:
                owed = self._task.failed(work, reported, describe(exc))
            except BaseException as lost:   # nor may a task that cannot say what it owes
                self._outcomes.put(LostWork(
                    f"a piece of work raised ({reason(exc)}) and its task could not fail "
                    f"its items ({reason(lost)})"))
            else:
                self._outcomes.put(owed)

    def collect(self, timeout: float) -> list[O]:
        if self._lost is not None:
            lost, self._lost = self._lost, None
            raise lost
        pieces: list[Sequence[O] | LostWork] = []
        try:
            pieces.append(self._outcomes.get(timeout=timeout))
            while True:
                pieces.append(self._outcomes.get_nowait())
        except Empty:
            pass
        ready: list[O] = []
        for piece in pieces:
            if isinstance(piece, LostWork):
                self._lost = self._lost or piece   # the first one tells; once is enough
            else:
                ready.extend(piece)
        if ready or self._lost is None:
            return ready    # what came back first is recorded first; the loss next call
        lost, self._lost = self._lost, None
        raise lost

    def cancel(self) -> None:
        self._task.cancel()

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


def threads(task: Task[W, O], workers: int) -> Executor[W, O]:
    """The default :data:`ExecutorFactory`: this process's threads."""
    return ThreadExecutor(task, workers)
