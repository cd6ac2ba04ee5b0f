"""Fixture plugins shared by every test directory."""

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.worker", "tests.fixtures.webhooks"]
