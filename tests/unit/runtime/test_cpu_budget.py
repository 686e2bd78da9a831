"""The background CPU budget: the sans-I/O token bucket, driven by fake clocks."""

from __future__ import annotations

import pytest

from wsnotebook.errors import ConfigError
from wsnotebook.runtime.budget import CpuBudget

# ------------------------------------------------------------------ sans-I/O, fake clocks


def test_idle_loop_is_never_paused():
    b = CpuBudget(fraction=0.5, period=0.02)
    assert b.observe(0.0, 0.0) == 0.0
    assert b.observe(0.02, 0.001) == 0.0
    assert b.pauses == 0


def test_busy_loop_is_paused_to_its_share_of_a_core():
    b = CpuBudget(fraction=0.5, period=0.02, max_pause=1.0)
    b.observe(0.0, 0.0)
    # 20 ms of wall time fully on CPU: at half a core the loop must idle another 20 ms.
    pause = b.observe(0.02, 0.02)
    assert pause == pytest.approx(0.02)
    assert b.pauses == 1
    assert b.paused_seconds == pytest.approx(0.02)


def test_pause_is_capped_so_heartbeats_keep_flowing():
    b = CpuBudget(fraction=0.1, period=0.02, max_pause=0.05)
    b.observe(0.0, 0.0)
    assert b.observe(0.02, 0.02) == pytest.approx(0.05)


def test_time_spent_paused_counts_as_idle():
    b = CpuBudget(fraction=0.5, period=0.02, max_pause=1.0)
    b.observe(0.0, 0.0)
    assert b.observe(0.02, 0.02) > 0
    b.resumed(0.04, 0.02)
    assert b.observe(0.06, 0.021) == 0.0


def test_fraction_one_disables_throttling():
    b = CpuBudget(fraction=1.0, switch_interval=None)
    b.observe(0.0, 0.0)
    assert not b.enabled
    assert not b.active
    assert b.observe(1.0, 1.0) == 0.0


def test_a_burst_up_to_fraction_times_period_is_free():
    b = CpuBudget(fraction=0.5, period=0.01)
    b.charge(0.0, 0.005)  # exactly the 5 ms burst
    assert b.pause_for(0.0) == 0.0
    b.charge(0.0, 0.002)  # 2 ms over: repaid at half a core -> 4 ms pause
    assert b.pause_for(0.0) == pytest.approx(0.004)


def test_credit_accrues_with_wall_time_but_never_beyond_the_burst():
    b = CpuBudget(fraction=0.5, period=0.01, max_pause=1.0)
    b.charge(0.0, 0.0)
    # a long idle stretch must not bank a huge credit that lets a later flood through
    b.charge(100.0, 0.015)
    assert b.pause_for(100.0) == pytest.approx(0.02)  # 10 ms debt at 0.5 core


def test_debt_is_paid_back_by_waiting():
    b = CpuBudget(fraction=0.25, period=0.01, max_pause=1.0)
    b.charge(0.0, 0.0125)  # burst 2.5 ms -> 10 ms debt -> 40 ms at a quarter core
    pause = b.pause_for(0.0)
    assert pause == pytest.approx(0.04)
    assert b.pause_for(pause / 2) == pytest.approx(0.02)
    assert b.pause_for(pause) == 0.0


def test_worker_threads_share_the_loops_bucket_and_are_counted_apart():
    b = CpuBudget(fraction=0.5, period=0.01, max_pause=1.0)
    b.charge(0.0, 0.004)
    assert b.pause_for(0.0) == 0.0
    b.charge(0.0, 0.003, worker=True)  # the monitor's rendering thread
    assert b.pause_for(0.0) == pytest.approx(0.004)
    assert b.loop_cpu_seconds == pytest.approx(0.004)
    assert b.worker_cpu_seconds == pytest.approx(0.003)


def test_negative_or_clock_skewed_charges_do_not_create_credit():
    b = CpuBudget(fraction=0.5, period=0.01, max_pause=1.0)
    b.charge(1.0, -5.0)
    b.charge(0.5, 0.0)  # the wall clock going backwards is ignored
    b.charge(0.5, 0.009)
    assert b.pause_for(0.5) == pytest.approx(0.008)


def test_pauses_and_producer_waits_are_counted():
    b = CpuBudget()
    b.paused(0.01)
    b.paused(0.02)
    b.producer_waited(0.03)
    assert (b.pauses, b.producer_waits) == (2, 1)
    assert b.paused_seconds == pytest.approx(0.03)
    assert b.producer_wait_seconds == pytest.approx(0.03)


def test_share_estimates_background_cores_used():
    b = CpuBudget(fraction=1.0, tau=0.5)
    t = 0.0
    for _ in range(400):  # 2 s at 60 % of a core, in 5 ms steps
        t += 0.005
        b.charge(t, 0.003)
    assert b.share == pytest.approx(0.6, abs=0.03)
    b.charge(t + 5.0, 0.0)  # 10 time constants idle
    assert b.share < 0.01


def test_pressure_is_a_share_near_the_budget_and_passes_with_idle_time():
    b = CpuBudget(fraction=0.5, tau=0.5, pressure=0.8, max_pause=1.0)
    t = 0.0
    for _ in range(400):  # 2 s at 30 % of a core: within the half-core budget, no pressure
        t += 0.005
        b.charge(t, 0.0015)
    assert b.under_pressure() is False
    for _ in range(400):  # 2 s at 45 % of a core: 90 % of the budget
        t += 0.005
        b.charge(t, 0.00225)
    assert b.under_pressure() is True
    b.charge(t + 2.0, 0.0)  # four time constants idle
    assert b.under_pressure() is False


def test_by_default_pressure_starts_at_a_fifth_of_a_core_well_below_the_budget():
    """Coalescing must engage steadily for a busy pipeline (~0.3 core at 10k ev/s), not only
    when the half-core budget is nearly used up, and never for light traffic (~0.05 core)."""
    b = CpuBudget(max_pause=1.0)
    t = 0.0
    for cores, expected in ((0.05, False), (0.15, False), (0.25, True), (0.3, True)):
        for _ in range(400):  # 2 s at this share, in 5 ms steps
            t += 0.005
            b.charge(t, 0.005 * cores)
        assert b.under_pressure() is expected, cores


def test_no_throttling_means_never_under_pressure():
    b = CpuBudget(fraction=1.0)
    b.charge(0.0, 0.0)
    b.charge(0.1, 0.1)  # flat out
    assert b.share > 0.1
    assert b.under_pressure() is False


def test_switch_interval_is_lowered_when_busy_and_restored_after_an_idle_second():
    b = CpuBudget(fraction=1.0, switch_interval=0.0005, tau=0.5, idle_hold=1.0)
    assert b.switch_wanted(0.0) is False
    t = 0.0
    for _ in range(100):  # busy: 0.6 core for 0.5 s
        t += 0.005
        b.charge(t, 0.003)
    assert b.switch_wanted(t) is True
    assert b.switch_lowered == 1
    # idle: share decays below idle_share after ~1 s, then must stay there idle_hold seconds
    assert b.switch_wanted(t + 1.0) is True  # share ~0.08, still above idle_share
    assert b.switch_wanted(t + 2.0) is True  # below idle_share: the hold starts
    assert b.switch_wanted(t + 2.5) is True
    assert b.switch_wanted(t + 3.1) is False
    assert b.switch_lowered == 1


def test_a_short_lull_does_not_restore_the_switch_interval():
    b = CpuBudget(fraction=1.0, switch_interval=0.0005, tau=0.1, idle_hold=1.0)
    b.charge(0.0, 0.0)
    b.charge(0.1, 0.1)
    assert b.switch_wanted(0.1)
    assert b.switch_wanted(1.0)  # quiet: the hold starts
    b.charge(1.5, 0.1)  # busy again before the hold ended
    assert b.switch_wanted(1.5)
    assert b.switch_wanted(2.2)  # the hold restarted at ~2.0 s
    assert b.switch_lowered == 1


def test_no_switch_interval_means_never_touch_it():
    b = CpuBudget(fraction=0.5, switch_interval=None)
    b.charge(0.0, 0.0)
    b.charge(0.1, 0.1)
    assert b.switch_wanted(0.1) is False
    assert b.switch_lowered == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fraction": 0.0},
        {"fraction": 1.5},
        {"period": 0.0},
        {"period": 2.0},
        {"max_pause": 0},
        {"switch_interval": 0.0},
        {"switch_interval": 0.01},
        {"tau": 0.0},
        {"busy_share": 0.01, "idle_share": 0.05},
        {"pressure": 0.0},
        {"pressure": 1.5},
    ],
)
def test_out_of_bounds_options_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        CpuBudget(**kwargs)
