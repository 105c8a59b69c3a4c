"""validation: Airflow-free."""
