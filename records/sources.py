"""Where a trainer or a problem came from: the installed distribution behind an entry point.

Rules: standard library only (backends.discovery and problems both read entry points through it). regbench's
own entry points come first and are the ones given here, made by hand, so that a source checkout that was
never pip-installed finds its own, and an installed regbench's are not found twice. A record names its
trainer's source as ``"DISTRIBUTION VERSION"`` (records.model.FitRecord.source). A plugin's code runs inside
``plugin_code()``: ``sys.exit()`` there, or a KeyboardInterrupt that no Ctrl-C sent, is its failure like any
exception (``PluginExit``), reported in one line (``failure``), never the end of the command or of pytest. A
benchmark or a conformance check runs ``within`` a time limit (``TIME_LIMIT_ENV``, default TIME_LIMIT_S): past it,
or leaving a thread that would keep its process from ending, it fails, named, and the others run on.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, version

DISTRIBUTION = "regbench"


@dataclass(frozen=True)
class Source:
    """``regbench-autograd 0.1.0 (entry point autograd)``."""

    distribution: str
    version: str
    entry_point: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version} (entry point {self.entry_point})"

    @property
    def builtin(self) -> bool:
        return self.distribution == DISTRIBUTION

    @property
    def release(self) -> str:
        """What a record keeps: ``regbench-autograd 0.1.0``."""
        return f"{self.distribution} {self.version}"


@dataclass(frozen=True)
class Broken:
    """An entry point (or what it declares) that was refused, and why, in one line."""

    source: Source
    error: str

    def __str__(self) -> str:
        return f"{self.source}: {self.error}"


def _own_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # a source checkout that was never installed
        return "(source)"


def source_of(ep: EntryPoint, builtin: bool = False) -> Source:
    if builtin:
        return Source(DISTRIBUTION, _own_version(), ep.name)
    dist = ep.dist
    return Source(dist.metadata["Name"] or "?", dist.version or "?", ep.name) if dist else Source("?", "?", ep.name)


def installed(group: str, builtin: Iterable[EntryPoint]) -> list[tuple[EntryPoint, Source]]:
    """regbench's own entry points of ``group`` first, then every other distribution's, by distribution and name."""
    own = [(ep, source_of(ep, builtin=True)) for ep in builtin]
    others = [(ep, source_of(ep)) for ep in entry_points(group=group)]
    others = [(ep, src) for ep, src in others if not src.builtin]
    return [*own, *sorted(others, key=lambda pair: (pair[1].distribution, pair[0].name))]


#: How much of what a plugin raised a line quotes.
FAILURE_CHARS = 300


class PluginExit(Exception):
    """A plugin's ``sys.exit()``, or its own KeyboardInterrupt: its failure, which ``except Exception`` reports."""

    def __init__(self, exc: BaseException) -> None:
        why = " (raised by the code, not by a Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else ""
        super().__init__(type(exc).__name__ + "".join(f": {arg}" for arg in exc.args[:1]) + why)


def failure(exc: BaseException) -> str:
    """``KeyError: 1``: what a plugin raised, in one line of at most FAILURE_CHARS characters of its message."""
    text = " ".join(str(exc).split())
    if len(text) > FAILURE_CHARS:
        text = text[:FAILURE_CHARS] + f"... ({len(text)} characters)"
    return text if isinstance(exc, PluginExit) else f"{type(exc).__name__}: {text}"


_sigint = {"seen": False}


def _on_sigint(signum, frame):
    _sigint["seen"] = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_watched() -> Iterator[None]:
    """Tell a Ctrl-C (a real SIGINT, which still raises KeyboardInterrupt) from a plugin's own KeyboardInterrupt,
    while this is entered in the main thread over Python's default handler (elsewhere every KeyboardInterrupt
    stops, as before)."""
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is signal.default_int_handler and signal.getsignal(signal.SIGINT) is _on_sigint:
            signal.signal(signal.SIGINT, previous)
            _sigint["seen"] = False


def _from_plugin(exc: BaseException) -> bool:
    if isinstance(exc, KeyboardInterrupt):  # a real Ctrl-C, or one regbench cannot tell apart, stops
        return signal.getsignal(signal.SIGINT) is _on_sigint and not _sigint["seen"]
    return isinstance(exc, SystemExit)


@contextlib.contextmanager
def plugin_code(quiet: bool = True) -> Iterator[None]:
    """Around a call into a plugin's code: ``sys.exit()`` or a KeyboardInterrupt no Ctrl-C sent become a
    PluginExit; with ``quiet`` what it prints is not shown (``regbench list`` stays one line a trainer)."""
    sink = io.StringIO()
    quieted = (contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink)) if quiet else ()
    try:
        with contextlib.ExitStack() as stack:
            for redirect in quieted:
                stack.enter_context(redirect)
            yield
    except (SystemExit, KeyboardInterrupt) as exc:
        if not _from_plugin(exc):
            raise
        raise PluginExit(exc) from exc  # its traceback names the plugin's line


#: Seconds one benchmark or conformance check may take, and the variable that sets them.
TIME_LIMIT_S, TIME_LIMIT_ENV = 600.0, "REGBENCH_TIME_LIMIT_S"
_left: list[threading.Thread] = []  # threads a test left running: they would keep its process from ending


def time_limit() -> float:
    """$REGBENCH_TIME_LIMIT_S's seconds, else TIME_LIMIT_S; ValueError naming it unless a finite number above 0."""
    value = os.environ.get(TIME_LIMIT_ENV)
    if value is None:
        return TIME_LIMIT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{TIME_LIMIT_ENV} must be a finite number of seconds > 0, got {value!r}")
    return seconds


class TimeLimitExceeded(Exception):
    """A benchmark or a check ran past its time limit, or left a thread running."""


@contextlib.contextmanager
def within(seconds: float, what: str) -> Iterator[None]:
    """Run ``what`` (a benchmark, a check) for ``seconds`` at most: past them, TimeLimitExceeded is raised in it
    (SIGALRM, in the main thread: a sleep, Python code and any call that returns to Python are stopped; a C loop
    that never does is stopped when it does). A thread it starts and leaves running fails it too (a non-daemon
    one would keep the process from ending: ``leave_stuck_threads`` ends it without them)."""
    before = set(threading.enumerate())
    timed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if timed:

        def expire(signum, frame):
            raise TimeLimitExceeded(f"{what} ran past its time limit of {seconds:g} s")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        left = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon and not _pooled(t)
        ]
        _left.extend(left)  # whether it failed or not: the process ends without them
    if left:
        names = ", ".join(dict.fromkeys(t.name for t in left))
        raise TimeLimitExceeded(f"{what} left {len(left)} thread(s) running ({names}): a fit's threads end with run()")


def _pooled(thread: threading.Thread) -> bool:
    """A worker of a concurrent.futures pool (torch.compile starts one on its first compile and keeps it): idle
    between tasks, and ended by Python itself at exit, so it keeps no process from ending."""
    target = getattr(thread, "_target", None)  # a running Thread keeps its target until run() returns
    return getattr(target, "__module__", "") == "concurrent.futures.thread"


def leave_stuck_threads(status: int) -> None:
    """At a pytest process's very end: where a test left threads still running, end the process with ``status``
    now (its results are written by then) rather than wait for them forever."""
    if any(t.is_alive() for t in _left):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
