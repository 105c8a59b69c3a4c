#!/usr/bin/env bash
# Creates the roles and databases of MLflow (its backend store) and Feast (its SQL registry) next to Airflow's
# (POSTGRES_DB). The postgres image runs this once, when it initialises an empty data volume; delete the volume
# (docker compose down -v) to run it again.
set -eo pipefail

create_db() {  # user password database
    psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
         --set user="$1" --set password="$2" --set db="$3" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
SQL
}

create_db "$MLFLOW_DB_USER" "$MLFLOW_DB_PASSWORD" "$MLFLOW_DB_NAME"
create_db "$FEAST_DB_USER" "$FEAST_DB_PASSWORD" "$FEAST_DB_NAME"
