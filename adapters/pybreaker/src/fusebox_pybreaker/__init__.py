"""fusebox-pybreaker: pybreaker circuit breakers on a fusebox dashboard, following the configs an
admin pushes there.

    import fusebox_pybreaker
    reporter = fusebox_pybreaker.attach([payments, search], url="http://fusebox:7878",
                                        key=os.environ["FUSEBOX_KEY"], service="checkout",
                                        instance="checkout-1")
    reporter.add(another_breaker)   # breakers made later
    reporter.close()                # flushes what is left; also runs at interpreter exit
"""

from __future__ import annotations

from typing import Iterable

import pybreaker

from ._binding import PybreakerBinding, refuse
from ._reporter import LATENCY_BOUNDS_MS, Reporter

__all__ = ["attach", "PybreakerReporter", "LATENCY_BOUNDS_MS", "refuse"]


class PybreakerReporter(Reporter):
    """Reports pybreaker breakers (bound with ``add``) and follows their pushed configs."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._by_breaker: dict[int, PybreakerBinding] = {}

    def add(self, breaker: pybreaker.CircuitBreaker, name: str | None = None) -> PybreakerBinding:
        """Starts reporting ``breaker`` (its ``name`` names it; ``name`` overrides)."""
        if id(breaker) in self._by_breaker:
            return self._by_breaker[id(breaker)]
        binding = PybreakerBinding(breaker, self, name)
        try:
            super().add(binding)
        except BaseException:
            binding.detach()
            raise
        self._by_breaker[id(breaker)] = binding
        return binding

    def detach(self, breaker: pybreaker.CircuitBreaker) -> None:
        """Stops reporting ``breaker`` and gives it back its own ``call``."""
        binding = self._by_breaker.pop(id(breaker), None)
        if binding is not None:
            self.remove(binding)
            binding.detach()


def attach(
    breakers: pybreaker.CircuitBreaker | Iterable[pybreaker.CircuitBreaker],
    *,
    url: str,
    key: str | None,
    service: str,
    instance: str,
    **options,
) -> PybreakerReporter:
    """Attaches one breaker or several to a fusebox server with the service's ingest ``key``.
    ``options`` are the tuning knobs of ``Reporter`` (``interval_s``, ``max_buffered``, …)."""
    reporter = PybreakerReporter(url, key, service, instance, **options)
    if isinstance(breakers, pybreaker.CircuitBreaker):
        breakers = [breakers]
    for breaker in breakers:
        reporter.add(breaker)
    return reporter
