"""io: Airflow-free."""
