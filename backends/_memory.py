"""Memory probes: the machine's RAM, the memory available to a new allocation, a process's /proc figures.

Rules: standard library only, and nothing here allocates or caches: every call reads the system's figure again.
Linux's /proc first, else ``os.sysconf``; a figure the system does not give is None (``proc_kib``: OSError).
"""

from __future__ import annotations

import os


def proc_kib(path: str, field: str) -> int:
    """A ``field: N kB`` line of a Linux /proc file (``/proc/meminfo``, ``/proc/self/status``), in KiB.

    OSError where the file cannot be read or has no such field.
    """
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in {path}")


def _memory(field: str, pages: str) -> int | None:
    """Bytes of a /proc/meminfo field, else of ``os.sysconf`` pages; None if unknown."""
    try:
        return proc_kib("/proc/meminfo", field) * 1024
    except OSError:
        pass
    try:
        return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable, else free pages); None if unknown."""
    return _memory("MemAvailable", "SC_AVPHYS_PAGES")


def total_memory() -> int | None:
    """Bytes of the machine's RAM (Linux's MemTotal, else its physical pages); None if unknown."""
    return _memory("MemTotal", "SC_PHYS_PAGES")
