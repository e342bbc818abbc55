"""What the reference client's tests share: their master password and a controllable clock."""

from __future__ import annotations

PASSWORD = "pw-one"


class Clock:
    """A controllable millisecond clock (each reading moves it 1 ms)."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now
