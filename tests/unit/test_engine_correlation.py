"""Correlation by topology: one parent outage, children attached, one notice per customer."""

from __future__ import annotations

from app.detection.engine import DetectionEngine
from app.outages.lifecycle import ActiveOutage, OutageState
from tests.factories import make_rule
from tests.unit.engine_helpers import T0, make_spec, moves, network, node_readings

OPEN, RESOLVED, SUSPECTED = OutageState.OPEN, OutageState.RESOLVED, OutageState.SUSPECTED
RULE = make_rule(name="modems-down-on-node", scope="node", min_devices=10, for_="0s")


def test_nodes_going_down_together_open_one_hub_outage_with_the_nodes_attached() -> None:
    engine = DetectionEngine([make_spec(**RULE)], network(nodes_per_hub=5))
    events = [e for n in range(5) for e in node_readings(T0, f"h0-n{n}", down=18)]
    transitions = engine.feed(events)
    assert moves(transitions)[:2] == [("hub", "h0", SUSPECTED), ("hub", "h0", OPEN)]
    children = [t for t in transitions if t.scope_level == "node"]
    assert {t.scope_id for t in children} == {f"h0-n{n}" for n in range(5)}
    assert all(t.parent_scope_id == "h0" for t in children)
    assert transitions[0].details == {"children": 5}


def test_a_single_node_outage_stays_a_node_outage() -> None:
    engine = DetectionEngine([make_spec(**RULE)], network(nodes_per_hub=5))
    transitions = engine.feed(node_readings(T0, "h0-n3", down=18))
    assert moves(transitions) == [("node", "h0-n3", SUSPECTED), ("node", "h0-n3", OPEN)]
    assert transitions[-1].parent_scope_id is None


def test_a_second_node_going_down_later_creates_the_parent_and_attaches_the_first() -> None:
    engine = DetectionEngine([make_spec(**RULE)], network())
    engine.feed(node_readings(T0, "h0-n0", down=18))
    transitions = engine.feed(node_readings(T0 + 30, "h0-n1", down=18))
    assert moves(transitions) == [
        ("hub", "h0", SUSPECTED),
        ("node", "h0-n0", OPEN),  # re-stated with its new parent
        ("hub", "h0", OPEN),
        ("node", "h0-n1", SUSPECTED),
        ("node", "h0-n1", OPEN),
    ]
    assert {t.parent_scope_id for t in transitions if t.scope_level == "node"} == {"h0"}


def test_an_outage_under_an_open_parent_attaches_at_once() -> None:
    engine = DetectionEngine([make_spec(**RULE)], network())
    engine.feed(node_readings(T0, "h0-n0", down=18) + node_readings(T0, "h0-n1", down=18))
    transitions = engine.feed(node_readings(T0 + 30, "h0-n2", down=18))
    assert moves(transitions) == [("node", "h0-n2", SUSPECTED), ("node", "h0-n2", OPEN)]
    assert all(t.parent_scope_id == "h0" for t in transitions)


def test_the_parent_resolves_when_its_last_child_does() -> None:
    engine = DetectionEngine([make_spec(**RULE)], network())
    engine.feed(node_readings(T0, "h0-n0", down=18) + node_readings(T0, "h0-n1", down=18))
    first = engine.feed(node_readings(T0 + 60, "h0-n0", down=0))
    assert moves(first) == [("node", "h0-n0", RESOLVED)]
    assert first[0].parent_scope_id == "h0"
    last = engine.feed(node_readings(T0 + 90, "h0-n1", down=0))
    assert moves(last) == [("node", "h0-n1", RESOLVED), ("hub", "h0", RESOLVED)]


def test_nodes_of_different_hubs_are_not_correlated() -> None:
    engine = DetectionEngine([make_spec(**RULE)], network(hubs=2, nodes_per_hub=1))
    transitions = engine.feed(
        node_readings(T0, "h0-n0", down=18) + node_readings(T0, "h1-n0", down=18)
    )
    assert {t.scope_level for t in transitions} == {"node"}


def test_a_restarted_engine_keeps_children_attached_to_their_parent() -> None:
    seeded = [
        ActiveOutage(1, "hub", "h0", OPEN, T0, T0),
        ActiveOutage(1, "node", "h0-n0", OPEN, T0, T0, devices_at_open=20, parent_scope_id="h0"),
        ActiveOutage(1, "node", "h0-n1", OPEN, T0, T0, devices_at_open=20, parent_scope_id="h0"),
    ]
    engine = DetectionEngine([make_spec(**RULE)], network(), seeded)
    engine.feed(node_readings(T0 + 60, "h0-n0", down=0))
    last = engine.feed(node_readings(T0 + 90, "h0-n1", down=0))
    assert moves(last) == [("node", "h0-n1", RESOLVED), ("hub", "h0", RESOLVED)]


def test_a_detector_taking_over_a_partition_adopts_the_open_outage_and_resolves_it() -> None:
    engine = DetectionEngine([make_spec(**RULE)], network())
    engine.feed(node_readings(T0, "h0-n0", down=0))  # it saw the node healthy, long ago
    engine.reconcile([ActiveOutage(1, "node", "h0-n0", OPEN, T0 + 10, T0 + 10, devices_at_open=20)])
    assert engine.feed(node_readings(T0 + 60, "h0-n0", down=12)) == []
    assert moves(engine.feed(node_readings(T0 + 90, "h0-n0", down=0))) == [
        ("node", "h0-n0", RESOLVED)
    ]


def test_an_outage_another_detector_closed_is_forgotten_on_reconcile() -> None:
    engine = DetectionEngine([make_spec(**RULE)], network())
    engine.feed(node_readings(T0, "h0-n0", down=18))
    engine.reconcile([])
    # Still down: from idle, the condition opens a fresh outage rather than staying silent.
    assert moves(engine.feed(node_readings(T0 + 60, "h0-n0", down=18)))[-1] == (
        "node",
        "h0-n0",
        OPEN,
    )
