"""The few calls of Airflow's public REST API (v2) the demo and its tests make."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

from demo.processes import StackError

#: Attempts of a GET before the demo gives up on the API server.
READ_ATTEMPTS = 3


class _TokenAuth(httpx.Auth):
    """Bearer-token auth for Airflow's SimpleAuthManager; no header at all without credentials.

    :param base_url: the API server's base URL.
    :param credentials: ``(username, password)``, or ``None``.
    """

    requires_response_body = True

    def __init__(self, base_url: str, credentials: tuple[str, str] | None) -> None:
        self._url = f"{base_url}/auth/token"
        self._credentials = credentials
        self._token: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the bearer token, fetching it once (and again after a 401)."""
        if self._credentials is None:
            yield request
            return
        for attempt in range(2):
            if self._token is None or attempt:
                username, password = self._credentials
                login = yield httpx.Request("POST", self._url, json={"username": username, "password": password})
                login.read()
                _raise_for_status(login)
                self._token = str(login.json()["access_token"])
            request.headers["Authorization"] = f"Bearer {self._token}"
            response = yield request
            if response.status_code != 401:
                return


class AirflowApi:
    """The few calls of Airflow's public REST API (v2) the demo needs.

    Without credentials (the embedded stack, ``[core] simple_auth_manager_all_admins``) the API server adds an
    admin token to every request. With them (the prod profile), a token is fetched from ``/auth/token`` on
    first use, as any API client of a secured deployment does.

    :param base_url: the API server's base URL.
    :param credentials: ``(username, password)`` of a SimpleAuthManager user, or ``None``.
    """

    def __init__(self, base_url: str, credentials: tuple[str, str] | None = None) -> None:
        self._client = httpx.Client(base_url=f"{base_url}/api/v2", timeout=30, auth=_TokenAuth(base_url, credentials))

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; a GET is retried after a transport error (an API server slow under load).

        :param method: the HTTP method.
        :param path: the path under ``/api/v2``.
        :param kwargs: ``params`` or ``json``.
        :raises StackError: when the last attempt fails.
        """
        attempts = READ_ATTEMPTS if method == "GET" else 1
        failure: httpx.TransportError | None = None
        for _ in range(attempts):
            try:
                return self._client.request(method, path, **kwargs)
            except httpx.TransportError as err:
                failure = err
        raise StackError(
            f"{method} {self._client.base_url}{path}: {attempts} attempt(s) failed: {failure!r}"
        ) from failure

    def _get(self, path: str, **params: Any) -> Any:
        """GET ``path`` and return its JSON, raising :class:`StackError` on an HTTP error."""
        response = self._send("GET", path, params=params)
        _raise_for_status(response)
        return response.json()

    def healthy(self) -> bool | None:
        """``True`` once the metadatabase, scheduler, DAG processor and triggerer are healthy, else None."""
        response = self._client.get("/monitor/health")
        if response.status_code != 200:
            return None
        statuses = [component.get("status") for component in response.json().values()]
        return True if len(statuses) >= 4 and all(status == "healthy" for status in statuses) else None

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's details, or ``None`` while it is not parsed yet.

        :param dag_id: the DAG id.
        """
        response = self._send("GET", f"/dags/{dag_id}")
        if response.status_code == 404:
            return None
        _raise_for_status(response)
        result: dict[str, Any] = response.json()
        return result

    def import_errors(self) -> list[dict[str, Any]]:
        """All current DAG import errors (``filename``, ``stack_trace``, ...)."""
        errors: list[dict[str, Any]] = self._get("/importErrors", limit=100)["import_errors"]
        return errors

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause a DAG.

        :param dag_id: the DAG id.
        :param paused: the new state.
        """
        _raise_for_status(self._send("PATCH", f"/dags/{dag_id}", json={"is_paused": paused}))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs (``dag_run_id``, ``run_type``, ``state``, ...), oldest first.

        :param dag_id: the DAG id.
        """
        runs: list[dict[str, Any]] = self._get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="id")["dag_runs"]
        return runs

    def xcom(self, ti: dict[str, Any], key: str = "return_value") -> Any:
        """A task instance's XCom value, or ``None`` if it pushed none under ``key``.

        :param ti: a task instance as returned by :meth:`task_instances`.
        :param key: the XCom key.
        """
        path = f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/xcomEntries/{key}"
        response = self._send("GET", path, params={"map_index": ti["map_index"], "deserialize": True})
        if response.status_code == 404:
            return None
        _raise_for_status(response)
        return response.json()["value"]

    def trigger(self, dag_id: str, run_id: str, logical_date: str | None, conf: dict[str, Any]) -> dict[str, Any]:
        """Create a DAG run.

        :param dag_id: the DAG id.
        :param run_id: the run id to create.
        :param logical_date: ISO 8601 logical date; ``None`` for none (the run is after now).
        :param conf: the run's conf (the DAG's params).
        """
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf}
        response = self._send("POST", f"/dags/{dag_id}/dagRuns", json=body)
        _raise_for_status(response)
        result: dict[str, Any] = response.json()
        return result

    def asset_events(self, name: str) -> list[dict[str, Any]]:
        """The events of the asset named ``name`` (``source_dag_id``, ``extra``, ...), oldest first.

        :param name: the asset's name.
        """
        assets = [a for a in self._get("/assets", name_pattern=name, limit=100)["assets"] if a["name"] == name]
        if not assets:
            return []
        events: list[dict[str, Any]] = self._get("/assets/events", asset_id=assets[0]["id"], limit=100)["asset_events"]
        return events

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run's details (``state``, ``start_date``, ...).

        :param dag_id: the DAG id.
        :param run_id: the run id.
        """
        result: dict[str, Any] = self._get(f"/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances (``task_id``, ``map_index``, ``state``, ``duration``, ``try_number``).

        :param dag_id: the DAG id.
        :param run_id: the run id.
        """
        tis: list[dict[str, Any]] = self._get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)[
            "task_instances"
        ]
        return tis

    def task_log(self, ti: dict[str, Any]) -> str:
        """The full log of a task instance's latest try, as text.

        :param ti: a task instance as returned by :meth:`task_instances`.
        """
        run_path = f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}"
        log_path = f"{run_path}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
        payload = self._get(log_path, full_content=True, map_index=ti["map_index"])
        return "\n".join(_log_line(entry) for entry in payload.get("content", []))


def _log_line(entry: Any) -> str:
    """Render one structured entry of the log endpoint as text, with an exception as a short traceback."""
    if not isinstance(entry, dict):
        return str(entry)
    line = " ".join(str(entry[k]) for k in ("timestamp", "level", "logger", "event", "reason") if entry.get(k))
    for error in entry.get("error_detail") or []:
        frames = [f'  File "{f["filename"]}", line {f["lineno"]}, in {f["name"]}' for f in error.get("frames", [])]
        line += "\n" + "\n".join([*frames, f"{error.get('exc_type')}: {error.get('exc_value')}"])
    return line


def _raise_for_status(response: httpx.Response) -> None:
    """Raise :class:`StackError` with the response body if ``response`` is an HTTP error."""
    if response.is_error:
        request = response.request
        raise StackError(f"{request.method} {request.url} -> {response.status_code}: {response.text[:2000]}")
