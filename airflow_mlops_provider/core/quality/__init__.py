"""quality: live model quality from delayed labels (Airflow-free)."""
