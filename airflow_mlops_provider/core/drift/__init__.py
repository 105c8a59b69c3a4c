"""drift: Airflow-free."""
