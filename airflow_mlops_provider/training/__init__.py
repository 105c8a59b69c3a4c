"""The reference PyTorch trainer: ``python -m airflow_mlops_provider.training --help``.

Runs inside the GPU image or as a local process; imports no Airflow. Importing this package stays cheap.
"""
