"""Each rule kind opens an outage only while its condition holds, and clears with hysteresis."""

from __future__ import annotations

from app.detection.engine import DetectionEngine
from app.detection.telemetry import Telemetry
from app.domain.contacts import Contact
from app.domain.maintenance import MaintenanceWindow
from app.outages.lifecycle import OutageState
from tests.factories import make_rule
from tests.unit.engine_helpers import T0, make_spec, moves, network, node_readings

OPEN, RESOLVED, SUSPECTED, CANCELLED = (
    OutageState.OPEN,
    OutageState.RESOLVED,
    OutageState.SUSPECTED,
    OutageState.CANCELLED,
)

ABSENCE = make_rule("absence")
ALARM = make_rule("alarm")
THRESHOLD = make_rule("threshold")
SPIKE = make_rule("contacts_spike")


def heartbeats(ts: float, node: str, silent: int = 0) -> list[Telemetry]:
    return [Telemetry(ts, f"{node}-d{d}", "cpe.heartbeat", 1.0) for d in range(silent, 20)]


def test_absence_opens_when_half_the_modems_on_a_node_go_silent() -> None:
    engine = DetectionEngine([make_spec(**ABSENCE)], network(nodes_per_hub=2))
    for minute in range(3):
        assert engine.feed(heartbeats(T0 + 60 * minute, "h0-n0")) == []
    # From minute 3, 12 of 20 modems never report again; the others keep their beat.
    transitions = []
    for minute in range(3, 12):
        transitions += engine.feed(heartbeats(T0 + 60 * minute, "h0-n0", silent=12))
    states = moves(transitions)
    assert states[0] == ("node", "h0-n0", SUSPECTED)
    assert states[1] == ("node", "h0-n0", OPEN)
    opened = [t for t in transitions if t.to_state is OPEN][0]
    # Silent after 3 missed minutes (minute 5 was the last beat + 180 s), open 60 s later.
    assert opened.at.timestamp() - T0 == 60 * 6
    assert opened.details["silent"] == 12


def test_absence_detects_a_node_gone_completely_quiet_through_time_alone() -> None:
    engine = DetectionEngine([make_spec(**{**ABSENCE, "confirm_after": "0s"})], network())
    engine.feed(heartbeats(T0, "h0-n0"))
    assert engine.advance(T0 + 179) == []
    assert moves(engine.advance(T0 + 181)) == [
        ("node", "h0-n0", SUSPECTED),
        ("node", "h0-n0", OPEN),
    ]


def test_absence_resolves_when_the_modems_come_back() -> None:
    engine = DetectionEngine([make_spec(**{**ABSENCE, "confirm_after": "0s"})], network())
    engine.feed(heartbeats(T0, "h0-n0"))
    assert moves(engine.advance(T0 + 200))[-1] == ("node", "h0-n0", OPEN)
    assert moves(engine.feed(heartbeats(T0 + 210, "h0-n0"))) == [("node", "h0-n0", RESOLVED)]


def test_a_device_that_keeps_reporting_is_never_counted_silent() -> None:
    engine = DetectionEngine([make_spec(**{**ABSENCE, "confirm_after": "0s"})], network())
    for second in range(0, 3600, 60):
        assert engine.feed(heartbeats(T0 + second, "h0-n0")) == []


def test_alarm_opens_at_once_and_its_clear_event_closes_it() -> None:
    engine = DetectionEngine([make_spec(**ALARM)], network())
    raised = Telemetry(T0, "olt-7", "olt.los", 1.0, {"severity": "critical", "node": "h0-n1"})
    assert moves(engine.feed([raised])) == [
        ("node", "h0-n1", SUSPECTED),
        ("node", "h0-n1", OPEN),
    ]
    cleared = Telemetry(T0 + 90, "olt-7", "olt.los_clear", 1.0, {"node": "h0-n1"})
    assert moves(engine.feed([cleared])) == [("node", "h0-n1", RESOLVED)]


def test_an_alarm_that_does_not_match_opens_nothing() -> None:
    engine = DetectionEngine([make_spec(**ALARM)], network())
    minor = Telemetry(T0, "olt-7", "olt.los", 1.0, {"severity": "minor", "node": "h0-n1"})
    assert engine.feed([minor]) == []


def snr(ts: float, node: str, value: float, count: int = 20) -> list[Telemetry]:
    return [Telemetry(ts, f"{node}-d{d}", "stb.snr_db", value) for d in range(count)]


def test_threshold_opens_when_the_window_median_stays_low_for_two_minutes() -> None:
    engine = DetectionEngine([make_spec(**THRESHOLD)], network())
    transitions = []
    for step in range(0, 181, 30):
        transitions += engine.feed(snr(T0 + step, "h0-n0", 22.0))
    assert moves(transitions) == [("node", "h0-n0", SUSPECTED), ("node", "h0-n0", OPEN)]
    assert transitions[-1].at.timestamp() - T0 == 120
    assert transitions[-1].details["value"] == 22.0


def test_threshold_needs_min_samples_before_it_says_anything() -> None:
    engine = DetectionEngine([make_spec(**{**THRESHOLD, "for": "0s"})], network())
    assert engine.feed(snr(T0, "h0-n0", 10.0, count=19)) == []
    assert moves(engine.feed(snr(T0 + 1, "h0-n0", 10.0, count=1)))[-1][2] is OPEN


def test_threshold_clears_only_above_the_clear_threshold() -> None:
    engine = DetectionEngine([make_spec(**{**THRESHOLD, "for": "0s", "window": "1m"})], network())
    engine.feed(snr(T0, "h0-n0", 20.0))
    assert engine.feed(snr(T0 + 61, "h0-n0", 26.0)) == []  # above 25, still below 28
    assert moves(engine.feed(snr(T0 + 122, "h0-n0", 29.0))) == [("node", "h0-n0", RESOLVED)]


def test_threshold_percentiles_and_rates_are_computed_over_the_window() -> None:
    from app.detection.signals import aggregate
    from app.detection.spec import Aggregate

    values = [float(v) for v in range(1, 101)]
    assert aggregate(Aggregate.P50, values, 60) == 50.0
    assert aggregate(Aggregate.P95, values, 60) == 95.0
    assert aggregate(Aggregate.P99, values, 60) == 99.0
    assert aggregate(Aggregate.AVG, values, 60) == 50.5
    assert aggregate(Aggregate.RATE, values, 50) == 2.0
    assert aggregate(Aggregate.COUNT, values, 60) == 100.0


def calls(ts: float, node: str, count: int) -> list[Contact]:
    return [Contact(ts + i, customer_id=f"c-{node}-d{i % 20}") for i in range(count)]


def test_a_spike_of_calls_over_the_baseline_opens_an_outage() -> None:
    engine = DetectionEngine([make_spec(**SPIKE)], network())
    # A normal day: one call per 10 minutes on the node.
    for window in range(12):
        assert engine.feed_contacts(calls(T0 + 600 * window, "h0-n0", 1)) == []
    spike = engine.feed_contacts(calls(T0 + 600 * 12, "h0-n0", 8))
    assert moves(spike)[-1] == ("node", "h0-n0", OPEN)
    assert spike[-1].details["contacts"] == 8
    # Its first customer contact is the spike's first call, not one from the quiet days.
    assert spike[-1].details["first_contact_ts"] == T0 + 600 * 12


def test_a_handful_of_calls_below_min_contacts_opens_nothing() -> None:
    engine = DetectionEngine([make_spec(**SPIKE)], network())
    assert engine.feed_contacts(calls(T0, "h0-n0", 4)) == []


def test_contacts_by_phone_number_are_placed_through_the_customer() -> None:
    topology = network()
    topology = type(topology)(
        device_node=topology.device_node,
        parent=topology.parent,
        customer_nodes=topology.customer_nodes,
        phone_customer={"+4915112345678": "c-h0-n2-d0"},
    )
    engine = DetectionEngine([make_spec(**SPIKE)], topology)
    contacts = [Contact(T0 + i, phone="+4915112345678") for i in range(6)]
    assert moves(engine.feed_contacts(contacts))[-1] == ("node", "h0-n2", OPEN)


def test_maintenance_on_a_hub_suppresses_detection_on_its_nodes_until_it_ends() -> None:
    spec = make_spec(
        name="down",
        kind="ratio_down",
        metric="cpe.online",
        threshold=0.3,
        clear_threshold=0.1,
        min_devices=10,
    )
    engine = DetectionEngine([spec], network())
    engine.replace_maintenance([MaintenanceWindow("h0", T0, T0 + 600)])
    assert engine.feed(node_readings(T0 + 10, "h0-n0", down=20)) == []
    assert engine.suppressed == 20
    after = engine.feed(node_readings(T0 + 700, "h0-n0", down=20))
    assert moves(after)[-1] == ("node", "h0-n0", OPEN)


def test_silent_modems_during_maintenance_do_not_open_an_outage_when_it_ends() -> None:
    engine = DetectionEngine([make_spec(**{**ABSENCE, "confirm_after": "0s"})], network())
    engine.feed(heartbeats(T0, "h0-n0"))
    engine.replace_maintenance([MaintenanceWindow("h0-n0", T0 + 30, T0 + 900)])
    assert engine.advance(T0 + 600) == []
    # Maintenance is over; the modems get their 3 intervals to report again.
    assert engine.advance(T0 + 1000) == []
    assert engine.feed(heartbeats(T0 + 1010, "h0-n0")) == []


def test_events_later_than_the_allowed_lateness_are_counted_not_applied() -> None:
    spec = make_spec(
        name="down",
        kind="ratio_down",
        metric="cpe.online",
        threshold=0.3,
        clear_threshold=0.1,
        min_devices=10,
    )
    engine = DetectionEngine([spec], network(), allowed_lateness=60)
    engine.feed(node_readings(T0 + 600, "h0-n1", down=0))
    assert engine.feed(node_readings(T0, "h0-n0", down=20)) == []
    assert engine.late == 20
