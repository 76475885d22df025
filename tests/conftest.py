"""Shared fixtures: the real-parts fixtures live in tests/fixtures/ and are registered here."""

pytest_plugins = [
    "tests.fixtures.pg",
    "tests.fixtures.supabase",
    "tests.fixtures.s3",
    "tests.fixtures.moto_iam",
    "tests.fixtures.cli",
    "tests.fixtures.webhook",
    "tests.fixtures.zoo",
    "tests.fixtures.stream",
]
