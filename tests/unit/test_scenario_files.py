"""Scenario files: the bundled ones by name, any other by path, and each bundled one valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from forewarn.scenario import SCENARIOS, bundled_scenarios, load_scenario, scenario_path


def test_the_bundled_scenarios_ship_inside_the_package() -> None:
    assert SCENARIOS.parent.name == "forewarn"
    assert bundled_scenarios() == ["demo", "quiet-night", "storm"]


@pytest.mark.parametrize("name", ["storm", "storm.yaml"])
def test_a_bundled_scenario_is_found_by_its_name(name: str) -> None:
    assert scenario_path(name) == SCENARIOS / "storm.yaml"


def test_a_file_is_taken_as_given_before_a_bundled_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "storm.yaml"
    mine.write_text((SCENARIOS / "demo.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert scenario_path("storm.yaml") == Path("storm.yaml")
    assert scenario_path(str(mine)) == mine


def test_an_unknown_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ValueError, match="bundled: demo, quiet-night, storm"):
        scenario_path("nosuch")
    with pytest.raises(ValueError, match="no scenario file"):
        scenario_path("some/dir/storm.yaml")  # a path that does not exist is not a name


@pytest.mark.parametrize("name", bundled_scenarios())
def test_every_bundled_scenario_is_valid(name: str) -> None:
    assert load_scenario(scenario_path(name)).name
