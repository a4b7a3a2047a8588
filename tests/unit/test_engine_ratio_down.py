"""The ratio_down rule: opens when too many modems on a node are down, resolves on clear."""

from __future__ import annotations

from datetime import timedelta

from app.detection.engine import DetectionEngine
from app.detection.spec import RuleSpec
from app.detection.telemetry import Telemetry
from app.domain.maintenance import MaintenanceWindow
from app.domain.topology import Topology
from app.outages.lifecycle import ActiveOutage, OutageState
from app.rules.schemas import RatioDownRule, to_spec
from tests.factories import node_rule

T0 = 1_700_000_000.0


def spec(**overrides: object) -> RuleSpec:
    return to_spec(1, 1, RatioDownRule.model_validate(node_rule(**overrides)))


def topology(nodes: int = 2, per_node: int = 20) -> Topology:
    device_node = {f"n{n}-d{d}": f"node-{n}" for n in range(nodes) for d in range(per_node)}
    return Topology(device_node=device_node, parent={f"node-{n}": "hub-1" for n in range(nodes)})


def readings(ts: float, node: int, down: int, per_node: int = 20) -> list[Telemetry]:
    return [
        Telemetry(ts, f"n{node}-d{d}", "cpe.online", 0.0 if d < down else 1.0)
        for d in range(per_node)
    ]


def states(transitions: list) -> list[tuple[str, OutageState]]:
    return [(t.scope_id, t.to_state) for t in transitions]


def test_outage_opens_when_the_down_ratio_holds_above_threshold_for_the_for_duration() -> None:
    engine = DetectionEngine([spec()], topology())
    assert engine.feed(readings(T0, 0, down=0)) == []
    assert engine.feed(readings(T0 + 1, 0, down=10)) == []  # condition starts
    assert engine.feed(readings(T0 + 20, 0, down=10)) == []  # 19 s in: still pending
    opened = engine.feed(readings(T0 + 31, 0, down=10))
    assert states(opened) == [("node-0", OutageState.SUSPECTED), ("node-0", OutageState.OPEN)]
    assert opened[-1].at.timestamp() == T0 + 31
    assert opened[-1].started_at.timestamp() == T0 + 1
    assert opened[-1].details == {"down": 10, "devices": 20, "ratio": 0.5}


def test_a_blip_shorter_than_for_opens_nothing() -> None:
    engine = DetectionEngine([spec()], topology())
    engine.feed(readings(T0, 0, down=10))
    assert engine.feed(readings(T0 + 10, 0, down=0)) == []
    assert engine.feed(readings(T0 + 100, 0, down=0)) == []


def test_healthy_neighbour_node_is_never_flagged() -> None:
    engine = DetectionEngine([spec()], topology())
    engine.feed(readings(T0, 0, down=15) + readings(T0, 1, down=1))
    transitions = engine.feed(readings(T0 + 40, 0, down=15) + readings(T0 + 40, 1, down=1))
    assert {t.scope_id for t in transitions} == {"node-0"}


def test_too_few_devices_never_open_an_outage() -> None:
    engine = DetectionEngine([spec(min_devices=30)], topology())
    engine.feed(readings(T0, 0, down=20))
    assert engine.feed(readings(T0 + 60, 0, down=20)) == []


def test_outage_resolves_only_below_the_clear_threshold() -> None:
    engine = DetectionEngine([spec(**{"for": "0s"})], topology())
    assert states(engine.feed(readings(T0, 0, down=10)))[-1][1] is OutageState.OPEN
    assert engine.feed(readings(T0 + 5, 0, down=4)) == []  # 0.2: between clear and threshold
    resolved = engine.feed(readings(T0 + 10, 0, down=1))  # 0.05 < 0.1
    assert states(resolved) == [("node-0", OutageState.RESOLVED)]


def test_confirm_after_keeps_the_outage_suspected_and_a_quick_clear_cancels_it() -> None:
    engine = DetectionEngine([spec(**{"for": "0s", "confirm_after": "60s"})], topology())
    assert states(engine.feed(readings(T0, 0, down=10))) == [("node-0", OutageState.SUSPECTED)]
    assert engine.advance(T0 + 30) == []
    assert states(engine.feed(readings(T0 + 40, 0, down=0))) == [("node-0", OutageState.CANCELLED)]


def test_suspected_outage_opens_when_confirm_after_passes_even_if_the_network_goes_quiet() -> None:
    engine = DetectionEngine([spec(**{"for": "0s", "confirm_after": "60s"})], topology())
    engine.feed(readings(T0, 0, down=10))
    assert states(engine.advance(T0 + 61)) == [("node-0", OutageState.OPEN)]


def test_older_readings_do_not_overwrite_newer_ones() -> None:
    engine = DetectionEngine([spec(**{"for": "0s"})], topology())
    engine.feed(readings(T0 + 10, 0, down=0))
    assert engine.feed(readings(T0, 0, down=20)) == []


def test_devices_missing_from_inventory_are_scoped_by_their_labels() -> None:
    engine = DetectionEngine([spec(**{"for": "0s"})], Topology())
    events = [
        Telemetry(T0, f"x{d}", "cpe.online", 0.0 if d < 5 else 1.0, {"node": "node-9"})
        for d in range(10)
    ]
    assert states(engine.feed(events))[-1] == ("node-9", OutageState.OPEN)
    assert engine.feed([Telemetry(T0, "lost", "cpe.online", 0.0)]) == []
    assert engine.unscoped == 1


def test_a_restarted_engine_waits_to_see_the_node_again_before_resolving() -> None:
    seeded = ActiveOutage(
        rule_id=1,
        scope_level="node",
        scope_id="node-0",
        state=OutageState.OPEN,
        started_at=T0,
        suspected_at=T0,
        devices_at_open=20,
    )
    engine = DetectionEngine([spec()], topology(), [seeded])
    # Only the healthy half reports at first: that is no proof the node recovered.
    assert engine.feed(readings(T0 + 100, 0, down=0)[10:]) == []
    resolved = engine.feed(readings(T0 + 110, 0, down=0))
    assert states(resolved) == [("node-0", OutageState.RESOLVED)]


def test_replaying_the_same_events_gives_the_same_transitions() -> None:
    batches = [readings(T0 + i * 10, 0, down=(12 if 2 <= i <= 8 else 0)) for i in range(12)]

    def run() -> list:
        engine = DetectionEngine([spec()], topology())
        return [t for batch in batches for t in engine.feed(batch)]

    first, second = run(), run()
    assert first == second
    assert [t.to_state for t in first] == [
        OutageState.SUSPECTED,
        OutageState.OPEN,
        OutageState.RESOLVED,
    ]
    assert first[1].at - first[1].started_at == timedelta(seconds=30)


def test_an_outage_the_noc_resolved_while_it_still_holds_opens_again() -> None:
    engine = DetectionEngine([spec(**{"for": "0s"})], topology())
    opened = engine.feed(readings(T0, 0, down=12))
    assert [t.to_state for t in opened] == [OutageState.SUSPECTED, OutageState.OPEN]

    engine.forget_closed([])  # the database has no open outage any more
    again = engine.feed(readings(T0 + 10, 0, down=12))

    assert [(t.scope_id, t.to_state) for t in again] == [
        ("node-0", OutageState.SUSPECTED),
        ("node-0", OutageState.OPEN),
    ]
    assert again[0].started_at > opened[0].started_at


def test_forgetting_closed_outages_keeps_the_ones_still_open() -> None:
    engine = DetectionEngine([spec(**{"for": "0s"})], topology())
    opened = engine.feed(readings(T0, 0, down=12))[-1]
    active = ActiveOutage(
        rule_id=1,
        scope_level="node",
        scope_id="node-0",
        state=OutageState.OPEN,
        started_at=opened.started_at.timestamp(),
        suspected_at=opened.started_at.timestamp(),
    )
    engine.forget_closed([active])
    assert engine.feed(readings(T0 + 10, 0, down=12)) == []


def test_a_device_moved_to_another_node_counts_there_once_the_topology_is_replaced() -> None:
    engine = DetectionEngine([spec(**{"for": "0s"})], topology())
    assert engine.feed(readings(T0, 0, down=0)) == []  # node-0's devices, placed and cached
    moved = dict(topology().device_node) | {f"n0-d{d}": "node-1" for d in range(10)}
    engine.replace_topology(Topology(device_node=moved, parent={"node-1": "hub-1"}))
    opened = engine.feed(readings(T0 + 10, 0, down=10)[:10])
    assert states(opened) == [("node-1", OutageState.SUSPECTED), ("node-1", OutageState.OPEN)]


def test_a_rule_moved_to_another_scope_level_places_readings_at_the_new_level() -> None:
    engine = DetectionEngine([spec(**{"for": "0s"})], topology())
    assert engine.feed(readings(T0, 0, down=0)) == []
    engine.replace_rules([spec(**{"for": "0s", "scope": "hub"})])
    opened = engine.feed(readings(T0 + 10, 0, down=12))
    assert [(t.scope_level, t.scope_id, t.to_state) for t in opened] == [
        ("hub", "hub-1", OutageState.SUSPECTED),
        ("hub", "hub-1", OutageState.OPEN),
    ]


# A reading that leaves its device as it was (still up, still down) does not make its scope be
# evaluated again; these are the changes that must, with no reading changing.


def test_a_rule_made_stricter_judges_readings_that_have_not_changed() -> None:
    engine = DetectionEngine([spec(**{"for": "0s"})], topology())
    assert engine.feed(readings(T0, 0, down=5)) == []  # 25 % down: under the 30 % threshold
    engine.replace_rules([spec(**{"for": "0s", "threshold": 0.2})])
    opened = engine.feed(readings(T0 + 10, 0, down=5))
    assert states(opened) == [("node-0", OutageState.SUSPECTED), ("node-0", OutageState.OPEN)]


def test_devices_still_down_when_a_maintenance_window_ends_open_an_outage() -> None:
    engine = DetectionEngine([spec()], topology())
    assert engine.feed(readings(T0, 0, down=12)) == []  # pending: `for` is 30 s
    engine.replace_maintenance([MaintenanceWindow("node-0", T0 + 5, T0 + 100)])
    assert engine.feed(readings(T0 + 10, 0, down=12)) == []  # suppressed; pending dropped
    assert engine.feed(readings(T0 + 110, 0, down=12)) == []  # the same readings: pending again
    opened = engine.feed(readings(T0 + 141, 0, down=12))
    assert states(opened) == [("node-0", OutageState.SUSPECTED), ("node-0", OutageState.OPEN)]
    assert opened[0].started_at.timestamp() == T0 + 110


def test_a_taken_over_outage_clears_when_its_warm_up_ends_with_no_reading_changing() -> None:
    engine = DetectionEngine([spec()], topology(), warmup_seconds=60)
    engine.reconcile(
        [
            ActiveOutage(
                rule_id=1,
                scope_level="node",
                scope_id="node-0",
                state=OutageState.OPEN,
                started_at=T0 - 600,
                suspected_at=T0 - 600,
                devices_at_open=20,
            )
        ]
    )
    half = readings(T0, 0, down=0)[:10]  # half the node seen again, all up
    assert engine.feed(half) == []  # a clear, but the warm-up has 60 s to go
    assert engine.feed(half[:1]) == []  # an unchanged reading
    resolved = engine.advance(T0 + 61)
    assert states(resolved) == [("node-0", OutageState.RESOLVED)]
