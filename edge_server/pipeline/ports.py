"""Small protocols through which the pipeline reaches injected infrastructure."""

from __future__ import annotations

from typing import Protocol


class SessionMetrics(Protocol):
    def session_opened(self, active: int) -> None: ...
    def session_closed(self, reason: str, active: int) -> None: ...
    def session_rejected(self, reason: str) -> None: ...
    def chunk_processed(
        self, *, decode_s: float, analyze_s: float, total_s: float, onsets: int
    ) -> None: ...
    def chunk_rejected(self, reason: str) -> None: ...


class NullMetrics:
    """Metrics sink that records nothing (in-process evaluation, tests)."""

    def session_opened(self, active: int) -> None:
        pass

    def session_closed(self, reason: str, active: int) -> None:
        pass

    def session_rejected(self, reason: str) -> None:
        pass

    def chunk_processed(
        self, *, decode_s: float, analyze_s: float, total_s: float, onsets: int
    ) -> None:
        pass

    def chunk_rejected(self, reason: str) -> None:
        pass
