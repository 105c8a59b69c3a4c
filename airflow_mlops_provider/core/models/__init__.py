"""models: Airflow-free."""
