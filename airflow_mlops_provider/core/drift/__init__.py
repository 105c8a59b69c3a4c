"""Data drift, Airflow-free: the spec objects (:mod:`.spec`), the check (:mod:`.pipeline`), its statistics,
episodes and report, and the child process a poller runs it in (:mod:`.worker`)."""
