"""Backtests replay recorded telemetry through the engine and report what it would have done."""

from __future__ import annotations

import random

from app.detection.backtest import replay
from app.outages.lifecycle import OutageState
from tests.unit.engine_helpers import T0, make_spec, network, node_readings

RULE = make_spec(
    name="modems-down-on-node",
    kind="ratio_down",
    metric="cpe.online",
    threshold=0.3,
    clear_threshold=0.1,
    min_devices=10,
    confirm_after="60s",
    **{"for": "30s"},
)


def recording() -> list:
    events = []
    for tick in range(40):  # 10 minutes, one reading per modem every 15 s
        down = 15 if 8 <= tick < 24 else 0
        events += node_readings(T0 + tick * 15, "h0-n1", down=down)
        events += node_readings(T0 + tick * 15, "h0-n0", down=0)
    random.Random(3).shuffle(events)
    return events


def test_a_backtest_finds_the_outage_with_its_times() -> None:
    result = replay([RULE], network(), recording())
    assert result.events == 1600
    [outage] = result.outages
    assert (outage.scope_level, outage.scope_id) == ("node", "h0-n1")
    assert outage.started_at.timestamp() == T0 + 8 * 15
    assert outage.suspected_at is not None and outage.opened_at is not None
    assert outage.opened_at.timestamp() - outage.suspected_at.timestamp() == 60
    assert outage.final_state is OutageState.RESOLVED
    assert outage.closed_at is not None and outage.closed_at.timestamp() == T0 + 24 * 15


def test_a_stricter_rule_would_have_stayed_quiet() -> None:
    strict = make_spec(
        name="strict",
        kind="ratio_down",
        metric="cpe.online",
        threshold=0.9,
        clear_threshold=0.1,
        min_devices=10,
    )
    assert replay([strict], network(), recording()).outages == []


def test_a_timer_running_at_the_end_of_the_recording_still_fires() -> None:
    events = node_readings(T0, "h0-n1", down=0) + node_readings(T0 + 15, "h0-n1", down=15)
    [outage] = replay([RULE], network(), events).outages
    assert outage.final_state is OutageState.OPEN
