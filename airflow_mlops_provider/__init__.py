"""Apache Airflow provider for continuous training. Importing it stays cheap: version only."""

__version__ = "0.2.0"
