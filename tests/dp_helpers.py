"""Worker objects for tests of backends._process_group: no framework, so their groups start in well under a second."""

from __future__ import annotations

import os
import time
from typing import Any


class Sleeper:
    """Answers ``sleep(s)`` after sleeping (the GIL released, as in a collective) and ``pid()``."""

    def __init__(self, rank: int, world: int, payload: Any) -> None:
        self.rank = rank

    def sleep(self, seconds: float) -> int:
        time.sleep(seconds)
        return self.rank

    def pid(self) -> int:
        return os.getpid()
