#!/usr/bin/env bash
# Creates MLflow's role and database next to Airflow's (POSTGRES_DB). The postgres image runs this once, when it
# initialises an empty data volume; delete the volume (docker compose down -v) to run it again.
set -eo pipefail

psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set db="$MLFLOW_DB_NAME" --set user="$MLFLOW_DB_USER" --set password="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
SQL
