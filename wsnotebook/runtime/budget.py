"""``CpuBudget`` (sans-I/O, injected clock): the token bucket of background CPU time.

``fraction`` CPU-seconds per wall second, bursts capped at ``fraction * period``; the loop
charges it and pauses (releasing the GIL) while in debt, at most ``max_pause`` per pause.  The
measured rationale is in docs/design.md ("CPU budget").  No thread or clock is touched here:
:mod:`wsnotebook.runtime.loop` is the shell that applies it.
"""

from __future__ import annotations

import math

from ..errors import ConfigError


class CpuBudget:
    """Sans-I/O CPU budget for wsnotebook's background work inside a kernel (a token bucket).

    Python threads share one GIL: a background thread running flat out pushed a kernel's
    execute round-trip p99 from 5.5 ms to 274 ms here.  Every piece of background work --
    the loop thread between two ``select`` calls, a cooperative checkpoint inside a long loop,
    a worker thread (monitor rendering) -- :meth:`charge` s the CPU seconds it used.  Credit
    accrues at ``fraction`` CPU-seconds per wall second, capped at ``fraction * period`` (the
    longest burst); when the credit is negative, :meth:`pause_for` says how long the background
    side must sleep (releasing the GIL) to pay the debt back, capped at ``max_pause`` so
    heartbeats and pings keep flowing.  While the loop sleeps, sockets are not read, so TCP
    backpressure slows remote producers, in-process producers wait in ``budget_ready()`` (counted
    in :attr:`producer_waits`) and queued events coalesce into batches: nothing is dropped,
    delivery is only deferred.

    It also keeps an exponentially weighted estimate of the background CPU share (:attr:`share`,
    in cores, time constant ``tau`` seconds) and decides, with hysteresis, when the interpreter's
    GIL switch interval should be lowered (:meth:`switch_wanted`): a CPU-bound thread makes every
    GIL hand-off of the kernel's own threads wait up to one switch interval (5 ms by default),
    and a cell needs many hand-offs.  Lowered above ``busy_share`` cores, restored after
    ``idle_hold`` seconds below ``idle_share``.

    Under pressure (:meth:`under_pressure`: the share at or above ``pressure`` of the budget)
    the server also lets broadcast ticks linger (``_server.BUDGET_COALESCE``) so clients get
    fewer, larger ``batch`` messages: per-message work is most of the pipeline's cost at high
    rates, so this lets more events through the same budget (counted in :attr:`coalesced`).
    The default threshold is well below the budget on purpose: lingering only when the budget
    is nearly used up settles the share *at* the threshold (coalescing lowers it, which stops
    the coalescing), while from 0.2 cores on a 10k ev/s pipeline coalesces steadily and uses
    ~30 instead of ~40 us per event (measured: ~75 instead of ~500 messages/s).

    Bounds: ``0.05 <= fraction <= 1.0`` (1.0 disables throttling), ``0.001 <= period <= 1``,
    ``0 < max_pause <= 1``, ``switch_interval`` None (never touch it) or ``1e-5..0.005`` s,
    ``0 < pressure <= 1``.  Defaults: half a core, 10 ms period (5 ms burst), 50 ms max pause,
    switch interval untouched (None), pressure 0.4 (with half a core: coalesce from 0.2 cores on).
    """

    def __init__(
        self,
        *,
        fraction: float = 0.5,
        period: float = 0.01,
        max_pause: float = 0.05,
        switch_interval: float | None = None,
        tau: float = 0.5,
        busy_share: float = 0.2,
        idle_share: float = 0.05,
        idle_hold: float = 1.0,
        pressure: float = 0.4,
    ) -> None:
        if not 0.05 <= fraction <= 1.0:
            raise ConfigError(f"cpu budget fraction must be in 0.05..1.0, got {fraction}")
        if not 0.001 <= period <= 1.0:
            raise ConfigError(f"cpu budget period must be in 0.001..1 s, got {period}")
        if not 0 < max_pause <= 1.0:
            raise ConfigError(f"cpu budget max_pause must be in (0, 1] s, got {max_pause}")
        if switch_interval is not None and not 1e-5 <= switch_interval <= 0.005:
            raise ConfigError(
                f"switch_interval must be None or in 1e-5..0.005 s, got {switch_interval}"
            )
        if not tau > 0 or not 0 <= idle_share <= busy_share or not idle_hold >= 0:
            raise ConfigError("cpu budget: need tau > 0, 0 <= idle_share <= busy_share")
        if not 0.0 < pressure <= 1.0:
            raise ConfigError(f"cpu budget pressure must be in (0, 1], got {pressure}")
        self.fraction = fraction
        self.period = period
        self.max_pause = max_pause
        self.switch_interval = switch_interval
        self.tau = tau
        self.busy_share = busy_share
        self.idle_share = idle_share
        self.idle_hold = idle_hold
        self.pressure = pressure
        self.burst = fraction * period
        self.credit = self.burst
        self._last_wall: float | None = None
        self._last_cpu = 0.0
        self._idle_since: float | None = None
        self._switch_low = False
        #: EWMA of background CPU use, in cores (0..~1).
        self.share = 0.0
        #: Pauses taken by the loop thread / worker threads, and seconds spent in them.
        self.pauses = 0
        self.paused_seconds = 0.0
        #: Times an in-process producer was held back by ``budget_ready()``, and for how long.
        self.producer_waits = 0
        self.producer_wait_seconds = 0.0
        #: CPU seconds charged by the loop thread and by worker threads.
        self.loop_cpu_seconds = 0.0
        self.worker_cpu_seconds = 0.0
        #: Times the switch interval was lowered.
        self.switch_lowered = 0
        #: Broadcast ticks the server let linger because the budget was under pressure.
        self.coalesced = 0

    @property
    def enabled(self) -> bool:
        """True when throttling is on (``fraction < 1``)."""
        return self.fraction < 1.0

    @property
    def active(self) -> bool:
        """True when anything needs accounting (throttling or switch-interval management)."""
        return self.fraction < 1.0 or self.switch_interval is not None

    def under_pressure(self) -> bool:
        """True while throttling is on and the recent share is at least ``pressure`` of the
        budget (the last accounted value: a cheap read, no clock)."""
        return self.fraction < 1.0 and self.share >= self.pressure * self.fraction

    def accrue(self, wall: float) -> None:
        """Bring credit and the share estimate up to wall time ``wall`` (idle time since the
        last call earns credit, up to the burst; the share decays)."""
        last = self._last_wall
        self._last_wall = wall
        if last is None:
            return
        dwall = wall - last
        if dwall <= 0:
            return
        self.credit = min(self.burst, self.credit + self.fraction * dwall)
        self.share *= math.exp(-dwall / self.tau)

    def charge(self, wall: float, cpu_used: float, *, worker: bool = False) -> None:
        """Record ``cpu_used`` seconds of background CPU ending at ``wall`` (negative -> 0)."""
        self.accrue(wall)
        used = max(0.0, cpu_used)
        if worker:
            self.worker_cpu_seconds += used
        else:
            self.loop_cpu_seconds += used
        self.share += used / self.tau
        if self.enabled:
            self.credit -= used

    def pause_for(self, wall: float) -> float:
        """Seconds to sleep now to pay back the debt (0 when within budget); not counted."""
        if not self.enabled:
            return 0.0
        self.accrue(wall)
        if self.credit >= 0.0:
            return 0.0
        pause = -self.credit / self.fraction
        if pause < 0.0002:
            return 0.0
        return min(pause, self.max_pause)

    def paused(self, seconds: float) -> None:
        """Count a pause the caller took (loop thread or worker)."""
        self.pauses += 1
        self.paused_seconds += seconds

    def producer_waited(self, seconds: float) -> None:
        """Count a producer held back by backpressure for ``seconds``."""
        self.producer_waits += 1
        self.producer_wait_seconds += seconds

    def observe(self, wall: float, cpu: float) -> float:
        """Feed the wall clock and the loop thread's *cumulative* CPU time; return the pause.

        The first call only sets the reference.  The pause is counted (as if taken).
        """
        if self._last_wall is None:
            self._last_wall, self._last_cpu = wall, cpu
            return 0.0
        used, self._last_cpu = cpu - self._last_cpu, cpu
        self.charge(wall, used)
        pause = self.pause_for(wall)
        if pause:
            self.paused(pause)
        return pause

    def resumed(self, wall: float, cpu: float | None = None) -> None:
        """Call after a pause so the pause itself counts as idle wall time."""
        self.accrue(wall)
        if cpu is not None:
            self._last_cpu = cpu

    def switch_wanted(self, wall: float) -> bool:
        """Should the GIL switch interval be lowered now?  (Hysteresis on :attr:`share`.)"""
        if self.switch_interval is None:
            return False
        self.accrue(wall)
        if self.share >= self.busy_share:
            self._idle_since = None
            if not self._switch_low:
                self._switch_low = True
                self.switch_lowered += 1
        elif self._switch_low and self.share < self.idle_share:
            if self._idle_since is None:
                self._idle_since = wall
            elif wall - self._idle_since >= self.idle_hold:
                self._switch_low = False
                self._idle_since = None
        else:
            self._idle_since = None
        return self._switch_low
