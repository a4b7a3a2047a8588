"""Properties of the engine that must hold for any input (hypothesis)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from app.detection.engine import DetectionEngine
from app.detection.telemetry import Telemetry
from app.outages.lifecycle import OutageState, Transition
from tests.unit.engine_helpers import T0, make_spec, network

RULES = [
    make_spec(
        1,
        name="down",
        kind="ratio_down",
        metric="cpe.online",
        threshold=0.3,
        clear_threshold=0.1,
        min_devices=5,
        **{"for": "20s"},
    ),
    make_spec(
        2,
        name="snr",
        kind="threshold",
        metric="stb.snr_db",
        aggregate="p50",
        window="1m",
        op="<",
        threshold=25,
        clear_threshold=28,
        min_samples=5,
    ),
]
TOPOLOGY = network(hubs=1, nodes_per_hub=3, per_node=10)
DEVICES = sorted(TOPOLOGY.device_node)

event_strategy = st.builds(
    Telemetry,
    ts=st.integers(0, 300).map(lambda s: T0 + s),
    device_id=st.sampled_from(DEVICES),
    metric=st.sampled_from(["cpe.online", "stb.snr_db"]),
    value=st.sampled_from([0.0, 1.0, 20.0, 30.0]),
)


def run(batches: list[list[Telemetry]]) -> list[Transition]:
    engine = DetectionEngine(RULES, TOPOLOGY)
    return [t for batch in batches for t in engine.feed(batch)]


@given(st.lists(event_strategy, max_size=200), st.randoms())
def test_the_order_of_events_inside_a_batch_never_matters(
    events: list[Telemetry], rng: random.Random
) -> None:
    shuffled = events[:]
    rng.shuffle(shuffled)
    assert run([events]) == run([shuffled])


@given(st.lists(st.lists(event_strategy, max_size=40), max_size=10))
def test_replaying_the_same_input_gives_the_same_transitions(
    batches: list[list[Telemetry]],
) -> None:
    assert run(batches) == run(batches)


@given(st.lists(st.lists(event_strategy, max_size=40), max_size=10))
def test_a_ratio_outage_opens_only_while_its_condition_holds(
    batches: list[list[Telemetry]],
) -> None:
    for transition in run(batches):
        if transition.rule_id == 1 and transition.scope_level == "node":
            if transition.to_state in (OutageState.SUSPECTED, OutageState.OPEN):
                assert transition.details["ratio"] > 0.3
                assert transition.details["devices"] >= 5


@given(st.lists(st.lists(event_strategy, max_size=40), max_size=10))
def test_every_outage_follows_the_lifecycle(batches: list[list[Telemetry]]) -> None:
    allowed = {
        None: {OutageState.SUSPECTED},
        OutageState.SUSPECTED: {OutageState.OPEN, OutageState.CANCELLED},
        OutageState.OPEN: {OutageState.RESOLVED, OutageState.OPEN},
        OutageState.RESOLVED: {OutageState.SUSPECTED},
        OutageState.CANCELLED: {OutageState.SUSPECTED},
    }
    current: dict[tuple[int, str, str], OutageState] = {}
    for t in run(batches):
        key = (t.rule_id, t.scope_level, t.scope_id)
        before = current.get(key)
        assert t.to_state in allowed[before] or (t.to_state is before), (key, before, t.to_state)
        current[key] = t.to_state


def scenario(down_nodes: set[int], fail_at: int, recover_at: int) -> list[list[Telemetry]]:
    """Readings every 10 s for 10 minutes; the chosen nodes are 80 % down in between."""
    batches = []
    for tick in range(60):
        ts = T0 + tick * 10
        batch = []
        for device in DEVICES:
            node = int(device.split("-")[1][1:])
            index = int(device.rsplit("d", 1)[1])
            down = node in down_nodes and fail_at <= tick < recover_at and index < 8
            batch.append(Telemetry(ts, device, "cpe.online", 0.0 if down else 1.0))
        batches.append(batch)
    return batches


def outcome(transitions: list[Transition]) -> dict[tuple[str, str], list[OutageState]]:
    """Each outage's lifecycle; a child re-stated to attach to its parent is not a new step."""
    result: dict[tuple[str, str], list[OutageState]] = {}
    for t in transitions:
        if t.rule_id == 1:
            states = result.setdefault((t.scope_level, t.scope_id), [])
            if not states or states[-1] is not t.to_state:
                states.append(t.to_state)
    return result


@settings(max_examples=40, deadline=None)
@given(
    st.sets(st.integers(0, 2), max_size=3),
    st.integers(5, 20),
    st.integers(30, 50),
    st.integers(0, 2**32),
)
def test_reordering_within_the_allowed_lateness_does_not_change_the_outcome(
    down_nodes: set[int], fail_at: int, recover_at: int, seed: int
) -> None:
    rng = random.Random(seed)
    batches = scenario(down_nodes, fail_at, recover_at)
    # Delay each event by up to 30 s (three batches), well inside the 120 s lateness.
    delayed: list[list[Telemetry]] = [[] for _ in range(len(batches) + 3)]
    for index, batch in enumerate(batches):
        for event in batch:
            delayed[index + rng.randint(0, 3)].append(event)
    for batch in delayed:
        rng.shuffle(batch)
    in_order = outcome(run(batches))
    reordered = outcome(run(delayed))
    assert reordered == in_order
    assert {scope for _, scope in in_order if _ == "node"} == {f"h0-n{n}" for n in down_nodes}
