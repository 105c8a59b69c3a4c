"""features: Airflow-free."""
