"""A restarted detector knows only what it hears after the restart: too few reporting devices
is no proof that a scope recovered (issue: a false "fixed" after an ordinary restart)."""

from __future__ import annotations

from app.detection.engine import DetectionEngine
from app.detection.telemetry import Telemetry
from app.outages.lifecycle import ActiveOutage, OutageState
from tests.unit.engine_helpers import T0, make_spec, moves, network

NODE = "h0-n0"
ABSENCE = {
    "name": "modems-silent",
    "kind": "absence",
    "metric": "cpe.online",
    "expected_interval": "60s",
    "missed_intervals": 3,
    "threshold": 0.5,
    "clear_threshold": 0.2,
    "min_devices": 10,
}
RATIO_DOWN = {
    "name": "modems-down",
    "kind": "ratio_down",
    "metric": "cpe.online",
    "threshold": 0.5,
    "clear_threshold": 0.2,
    "min_devices": 10,
}


def _reports(ts: float, devices: range) -> list[Telemetry]:
    return [Telemetry(ts, f"{NODE}-d{d}", "cpe.online", 1.0) for d in devices]


def _open_outage_on_node() -> ActiveOutage:
    """The outage a previous detector opened: 15 of the node's 20 modems silent."""
    return ActiveOutage(
        rule_id=1,
        scope_level="node",
        scope_id=NODE,
        state=OutageState.OPEN,
        started_at=T0,
        suspected_at=T0,
        devices_at_open=20,
    )


def test_a_restarted_detector_keeps_an_absence_outage_while_its_modems_stay_silent() -> None:
    engine = DetectionEngine([make_spec(**ABSENCE)], network(), [_open_outage_on_node()])
    heard: list[tuple[str, str, OutageState]] = []
    # The five healthy modems report every minute for ten minutes, well past the warm-up;
    # the fifteen silent ones stay silent.
    for minute in range(1, 11):
        heard += moves(engine.feed(_reports(T0 + 60 * minute, range(5))))
    assert heard == []
    # The fifteen come back: now the node has recovered.
    back = moves(engine.feed(_reports(T0 + 660, range(20))))
    assert back == [("node", NODE, OutageState.RESOLVED)]


def test_a_restarted_detector_does_not_resolve_a_ratio_outage_on_too_few_devices() -> None:
    outage = _open_outage_on_node()
    engine = DetectionEngine([make_spec(**RATIO_DOWN)], network(), [outage])
    heard: list[tuple[str, str, OutageState]] = []
    for minute in range(1, 11):
        heard += moves(engine.feed(_reports(T0 + 60 * minute, range(5))))
    assert heard == []
    assert moves(engine.feed(_reports(T0 + 660, range(20)))) == [
        ("node", NODE, OutageState.RESOLVED)
    ]


def test_a_replica_that_hears_nothing_of_a_scope_never_resolves_its_outage() -> None:
    # Two engines stand for two replicas: the owner of the node's partition opened the
    # outage; the other seeds it from the database but hears nothing of the node.
    owner = DetectionEngine([make_spec(**ABSENCE)], network(), [_open_outage_on_node()])
    other = DetectionEngine([make_spec(**ABSENCE)], network(), [_open_outage_on_node()])
    heard: list[tuple[str, str, OutageState]] = []
    for minute in range(1, 11):
        now = T0 + 60 * minute
        heard += moves(owner.feed(_reports(now, range(5))))
        heard += moves(other.feed([Telemetry(now, "h0-n1-d0", "cpe.online", 1.0)]))
    assert heard == []
