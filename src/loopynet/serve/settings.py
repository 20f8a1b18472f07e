"""Settings of `loopynet serve` (imported by the CLI's parser: no web framework here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServeSettings:
    """Service limits and batching. Sizes in texts, characters and bytes; times in milliseconds."""

    models: list[str] = field(default_factory=list)
    max_body_bytes: int = 1 << 20
    max_texts: int = 64  # per request
    max_chars: int = 20_000  # per text; longer texts are truncated (flagged in the response)
    max_batch_texts: int = 64
    batch_wait_ms: float = 5.0
    max_queue_texts: int = 1000
    batching: bool = True
    threads: int = 1  # torch threads of the worker process (and of its explain thread)
    max_explain_texts: int = 4  # per POST /v1/explain request
    max_explain_queue: int = 16  # texts waiting or being explained per classifier; more: 503 + Retry-After

    def check(self) -> None:
        """Raise ValueError naming the first setting outside its range."""
        for name in ("max_body_bytes", "max_texts", "max_chars", "max_batch_texts", "max_queue_texts", "threads",
                     "max_explain_texts", "max_explain_queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ValueError(f"batch-wait-ms must be in [0, 1000], got {self.batch_wait_ms}")
        if self.max_queue_texts < self.max_texts:
            raise ValueError(f"max-queue-texts ({self.max_queue_texts}) must hold one full request "
                             f"(max-texts {self.max_texts})")
        if self.max_explain_queue < self.max_explain_texts:
            raise ValueError(f"max-explain-queue ({self.max_explain_queue}) must hold one full request "
                             f"(max-explain-texts {self.max_explain_texts})")
