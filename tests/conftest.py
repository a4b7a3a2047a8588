"""Shared fixtures: each family lives in its own module under tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.db",
    "tests.fixtures.notify",
    "tests.fixtures.cli",
]
