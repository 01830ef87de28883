# Fixtures live in tests/support/, one module a concern, loaded here for every test layer.
pytest_plugins = [
    "support.cluster_fixtures",
    "support.s3_fixtures",
    "support.operator_fixtures",
    "support.browser_fixtures",
]
