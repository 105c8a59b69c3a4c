"""Batch inference, Airflow-free: the model's inputs, chunked scoring, the unscorable policy, the predictions file."""
