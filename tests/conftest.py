pytest_plugins = [
    "tests.fixtures.s3_server",
    "tests.fixtures.mlflow_server",
    "tests.fixtures.task_context",
    "tests.fixtures.feast_repo",
    "tests.fixtures.live_prod",
]
