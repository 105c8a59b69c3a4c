"""A stand-in Kubernetes cluster on loopback: the slice of the API server that KubernetesPodOperator's
clients (sync ``kubernetes`` and ``kubernetes_asyncio``) use, a scheduler for one GPU node, and a kubelet
that runs each pod's container command as a local process.

The API server speaks real HTTP and JSON on ``127.0.0.1`` and a free port: pods (create, get, list by label
selector, merge-patch, delete with a grace period, log with ``follow``/``timestamps``/``sinceSeconds``),
Secrets (for ``secretKeyRef``), and events (list by ``involvedObject.name``, and ``watch``). The scheduler
places a pod on the node only if its node selector matches the node's labels, its tolerations cover the
node's taints and the node has the GPUs it asks for; otherwise the pod stays ``Pending`` with the
``PodScheduled=False/Unschedulable`` condition and the ``FailedScheduling`` event a real scheduler writes.
The kubelet starts the container with exactly the pod's env (``secretKeyRef`` resolved from the Secret),
``python`` being this interpreter, and moves the pod ``Pending`` → ``Running`` → ``Succeeded``/``Failed``;
``terminationMessagePolicy: FallbackToLogsOnError`` fills the termination message from the log tail as a
kubelet does. :meth:`FakeCluster.evict` evicts a pod as a node under memory pressure would.

Not simulated: images (every image runs this interpreter), volumes (``/dev/shm`` is the host's), init and
sidecar containers, exec, RBAC, admission (a pod spec's schema is checked by tests/unit/test_pod_specs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

GPU = "nvidia.com/gpu"
NODE = "gpu-node-1"
GPU_PRODUCT = "NVIDIA-A100-SXM4-80GB"
# Like kubelet's FallbackToLogsOnError: the log tail, at most 80 lines and 2048 bytes.
_TERMINATION_LOG_LINES, _TERMINATION_LOG_BYTES = 80, 2048


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    return web.json_response(body | {"message": message, "reason": reason, "code": code}, status=code)


def _flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter (the sync client sends ``True``, the async one ``true``)."""
    return request.query.get(name, "").lower() in ("true", "1")


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386), which is what a strategic merge patch of labels amounts to."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _selects(selector: str, labels: dict[str, str]) -> bool:
    """Whether a label selector (``k=v``, ``k!=v``, ``k``, ``!k``, comma-separated) selects ``labels``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class Node:
    """The cluster's one node: its labels, taints and GPUs."""

    gpus: int = 1
    labels: dict[str, str] = field(
        default_factory=lambda: {
            "kubernetes.io/hostname": NODE,
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": GPU_PRODUCT,
        }
    )
    taints: list[dict[str, str]] = field(
        default_factory=lambda: [{"key": GPU, "value": "present", "effect": "NoSchedule"}]
    )


@dataclass
class _Pod:
    body: dict[str, Any]
    log: list[tuple[datetime, str]] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def key(self) -> tuple[str, str]:
        return self.body["metadata"]["namespace"], self.body["metadata"]["name"]


class FakeCluster:
    """The stand-in cluster. Start it with :meth:`running`; everything it started stops with it.

    :param work_dir: where the kubeconfig and the containers' working directories go.
    :param node: the node pods are scheduled on.
    """

    def __init__(self, work_dir: Path, node: Node | None = None) -> None:
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.node = node or Node()
        self.url = ""
        self.kubeconfig = work_dir / "kubeconfig.json"
        #: Every container the kubelet started, as ``(pod name, env)``, in order.
        self.started: list[tuple[str, dict[str, str]]] = []
        #: Every pod deleted through the API, by name, in order.
        self.deleted: list[str] = []
        #: What went wrong inside the stand-in (a bug of the stand-in or an unsupported pod): checked at exit.
        self.errors: list[BaseException] = []
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._secrets: dict[tuple[str, str], dict[str, str]] = {}
        self._events: list[dict[str, Any]] = []
        self._versions = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._changed: asyncio.Event | None = None

    # --- the test's side: thread-safe -------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def running(cls, work_dir: Path, node: Node | None = None) -> Iterator[FakeCluster]:
        """Serve the API on ``127.0.0.1`` (a free port) in a thread until the block exits; then kill every
        container process and stop the server."""
        cluster = cls(work_dir, node)
        started = threading.Event()
        runner: list[web.AppRunner] = []

        def serve() -> None:
            asyncio.set_event_loop(cluster._loop)
            runner.append(cluster._loop.run_until_complete(cluster._start()))
            started.set()
            cluster._loop.run_forever()

        thread = threading.Thread(target=serve, name="fake-kube-apiserver", daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError("the stand-in API server did not start")
        try:
            yield cluster
        finally:
            cluster.call(cluster._shutdown(runner[0]), timeout=30)
            cluster._loop.call_soon_threadsafe(cluster._loop.stop)
            thread.join(10)
            cluster._loop.close()
        if cluster.errors:
            raise RuntimeError(f"the stand-in cluster failed: {cluster.errors!r}") from cluster.errors[0]

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Create a Secret (``stringData``) that pods reference with ``secretKeyRef``."""
        self._secrets[(namespace, name)] = dict(data)

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        """The pods of a namespace, as the API returns them."""

        async def snapshot() -> list[dict[str, Any]]:
            return [copy.deepcopy(p.body) for (ns, _), p in self._pods.items() if ns == namespace]

        result: list[dict[str, Any]] = self.call(snapshot())
        return result

    def events(self, name: str) -> list[dict[str, Any]]:
        """The events about the pod ``name``."""
        return [copy.deepcopy(e) for e in self._events if e["involvedObject"]["name"] == name]

    def evict(self, namespace: str, name: str) -> None:
        """Evict a pod as the kubelet of a node under memory pressure does: kill its container, and end the
        pod ``Failed`` with reason ``Evicted``."""

        async def evict() -> None:
            pod = self._pods[(namespace, name)]
            await self._kill(pod, grace=0)
            status = pod.body["status"]
            status.update(
                phase="Failed",
                reason="Evicted",
                message="The node was low on resource: memory. Threshold quantity: 100Mi, available: 20Mi.",
            )
            self._event(pod, "Evicted", status["message"], "Warning")
            self._touch(pod)

        self.call(evict())

    def crash(self, namespace: str, name: str) -> None:
        """SIGKILL a pod's container, as the OOM killer does: the pod ends ``Failed`` (exit code 137)."""
        process = self._pods[(namespace, name)].process
        assert process is not None
        os.killpg(process.pid, signal.SIGKILL)

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 60) -> None:
        """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.1)

    def kube_connection(self, namespace: str) -> str:
        """An ``AIRFLOW_CONN_KUBERNETES_DEFAULT`` value: a ``kubernetes`` connection with this kubeconfig."""
        return json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(self.kubeconfig), "namespace": namespace}}
        )

    # --- the API server ---------------------------------------------------------------------------------

    async def _start(self) -> web.AppRunner:
        self._changed = asyncio.Event()
        app = web.Application()
        pods, pod = "/api/v1/namespaces/{ns}/pods", "/api/v1/namespaces/{ns}/pods/{name}"
        app.router.add_post(pods, self._create_pod)
        app.router.add_get(pods, self._list_pods)
        app.router.add_get(pod, self._get_pod)
        app.router.add_patch(pod, self._patch_pod)
        app.router.add_delete(pod, self._delete_pod)
        app.router.add_get(pod + "/log", self._pod_log)
        app.router.add_get("/api/v1/namespaces/{ns}/events", self._list_events)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
                    "users": [{"name": "airflow-worker", "user": {"token": "stand-in-token"}}],
                    "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "airflow-worker"}}],
                    "current-context": "stand-in",
                }
            )
        )
        return runner

    async def _shutdown(self, runner: web.AppRunner) -> None:
        for pod in list(self._pods.values()):
            await self._kill(pod, grace=0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await runner.cleanup()

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    def _touch(self, pod: _Pod) -> None:
        pod.body["metadata"]["resourceVersion"] = str(next(self._versions))
        pod.changed.set()
        pod.changed = asyncio.Event()

    def _find(self, request: web.Request) -> _Pod | None:
        return self._pods.get((request.match_info["ns"], request.match_info["name"]))

    @staticmethod
    def _not_found(request: web.Request) -> web.Response:
        return _status(404, "NotFound", f'pods "{request.match_info["name"]}" not found')

    async def _create_pod(self, request: web.Request) -> web.Response:
        body = await request.json()
        namespace, meta = request.match_info["ns"], body.setdefault("metadata", {})
        if not meta.get("name"):
            return _status(422, "Invalid", "metadata.name: Required value")
        if meta.get("namespace", namespace) != namespace:
            return _status(400, "BadRequest", "the namespace of the object does not match the namespace on the URL")
        if (namespace, meta["name"]) in self._pods:
            return _status(409, "AlreadyExists", f'pods "{meta["name"]}" already exists')
        meta.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now())
        body["spec"].setdefault("terminationGracePeriodSeconds", 30)
        body["status"] = {"phase": "Pending", "qosClass": "Burstable"}
        pod = _Pod(body)
        self._pods[pod.key] = pod
        self._touch(pod)
        self._spawn(self._run(pod))
        return web.json_response(body, status=201)

    async def _list_pods(self, request: web.Request) -> web.Response:
        selector = request.query.get("labelSelector", "")
        items = [
            p.body
            for (ns, _), p in self._pods.items()
            if ns == request.match_info["ns"] and _selects(selector, p.body["metadata"].get("labels") or {})
        ]
        meta = {"resourceVersion": str(next(self._versions))}
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items})

    async def _get_pod(self, request: web.Request) -> web.Response:
        pod = self._find(request)
        return web.json_response(pod.body) if pod else self._not_found(request)

    async def _patch_pod(self, request: web.Request) -> web.Response:
        pod = self._find(request)
        if pod is None:
            return self._not_found(request)
        _merge(pod.body, {"metadata": (await request.json()).get("metadata", {})})
        self._touch(pod)
        return web.json_response(pod.body)

    async def _delete_pod(self, request: web.Request) -> web.Response:
        pod = self._find(request)
        if pod is None:
            return self._not_found(request)
        options = await request.json() if request.can_read_body else {}
        grace = request.query.get("gracePeriodSeconds", (options or {}).get("gracePeriodSeconds"))
        grace = int(grace) if grace is not None else pod.body["spec"]["terminationGracePeriodSeconds"]
        if "deletionTimestamp" not in pod.body["metadata"]:
            pod.body["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=grace)
            self.deleted.append(pod.key[1])
            self._touch(pod)
            self._spawn(self._terminate(pod, grace))
        return web.json_response(pod.body)

    async def _terminate(self, pod: _Pod, grace: int) -> None:
        await self._kill(pod, grace)
        self._pods.pop(pod.key, None)
        self._touch(pod)

    async def _pod_log(self, request: web.Request) -> web.StreamResponse:
        pod = self._find(request)
        if pod is None:
            return self._not_found(request)
        container = pod.body["spec"]["containers"][0]["name"]
        if request.query.get("container", container) != container:
            return _status(400, "BadRequest", f"container {request.query['container']} is not valid for pod")
        if pod.process is None and not pod.log:
            return _status(400, "BadRequest", f'container "{container}" in pod is waiting to start')
        follow, timestamps = _flag(request, "follow"), _flag(request, "timestamps")
        since = request.query.get("sinceSeconds")
        cutoff = datetime.now(UTC) - timedelta(seconds=int(since)) if since else None
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        sent = 0
        while True:
            changed = pod.changed
            for at, line in pod.log[sent:]:
                if cutoff is None or at >= cutoff:
                    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ ") if timestamps else ""
                    await response.write(f"{stamp}{line}\n".encode())
            sent = len(pod.log)
            if not follow or self._terminated(pod) or pod.key not in self._pods:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 1)
        await response.write_eof()
        return response

    async def _list_events(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["ns"]
        selector = request.query.get("fieldSelector", "")
        name = selector.split("=", 1)[1] if selector.startswith("involvedObject.name=") else None

        def matching(after: int) -> list[dict[str, Any]]:
            return [
                e
                for e in self._events
                if e["metadata"]["namespace"] == namespace
                and (name is None or e["involvedObject"]["name"] == name)
                and int(e["metadata"]["resourceVersion"]) > after
            ]

        if not _flag(request, "watch"):
            meta = {"resourceVersion": str(next(self._versions))}
            return web.json_response({"kind": "EventList", "apiVersion": "v1", "metadata": meta, "items": matching(0)})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        seen = int(request.query.get("resourceVersion") or 0)
        deadline = time.monotonic() + float(request.query.get("timeoutSeconds") or 30)
        assert self._changed is not None
        while time.monotonic() < deadline:
            changed = self._changed
            for event in matching(seen):
                await response.write(json.dumps({"type": "ADDED", "object": event}).encode() + b"\n")
                seen = int(event["metadata"]["resourceVersion"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), max(0.0, min(1.0, deadline - time.monotonic())))
        await response.write_eof()
        return response

    def _event(self, pod: _Pod, reason: str, message: str, kind: str = "Normal") -> None:
        meta = pod.body["metadata"]
        version = str(next(self._versions))
        self._events.append(
            {
                "metadata": {"name": f"{meta['name']}.{version}", "namespace": meta["namespace"],
                             "uid": str(uuid.uuid4()), "resourceVersion": version},
                "involvedObject": {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"],
                                   "uid": meta["uid"], "apiVersion": "v1"},
                "reason": reason, "message": message, "type": kind, "count": 1,
                "firstTimestamp": _now(), "lastTimestamp": _now(),
                "source": {"component": "default-scheduler" if "Schedul" in reason else "kubelet"},
            }
        )  # fmt: skip
        assert self._changed is not None
        self._changed.set()
        self._changed = asyncio.Event()

    # --- scheduler and kubelet --------------------------------------------------------------------------

    def _unschedulable(self, spec: dict[str, Any]) -> str | None:
        """Why the node does not fit the pod, in the scheduler's words; ``None`` if it fits."""
        gpus_used = sum(
            int(c.get("resources", {}).get("limits", {}).get(GPU, 0))
            for p in self._pods.values()
            if p.body["spec"].get("nodeName") == NODE and p.body["status"]["phase"] in ("Pending", "Running")
            for c in p.body["spec"]["containers"]
        )
        wanted = sum(int(c.get("resources", {}).get("limits", {}).get(GPU, 0)) for c in spec["containers"])
        selector = spec.get("nodeSelector") or {}
        tolerated = all(
            any(
                t.get("key") in (None, taint["key"])
                and (t.get("operator") == "Exists" or t.get("value") == taint["value"])
                and t.get("effect") in (None, "", taint["effect"])
                for t in spec.get("tolerations") or []
            )
            for taint in self.node.taints
        )
        if any(self.node.labels.get(k) != v for k, v in selector.items()):
            reason = "1 node(s) didn't match Pod's node affinity/selector"
        elif not tolerated:
            taint = self.node.taints[0]
            reason = f"1 node(s) had untolerated taint {{{taint['key']}: {taint['value']}}}"
        elif wanted and gpus_used + wanted > self.node.gpus:
            reason = f"1 Insufficient {GPU}"
        else:
            return None
        return (
            f"0/1 nodes are available: {reason}. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod."
        )

    def _env(self, pod: _Pod, container: dict[str, Any]) -> dict[str, str] | str:
        """The container's env, or why it cannot be built (``CreateContainerConfigError``)."""
        env = {}
        for var in container.get("env") or []:
            if "valueFrom" in var:
                ref = var["valueFrom"]["secretKeyRef"]
                secret = self._secrets.get((pod.key[0], ref["name"]))
                if secret is None or ref["key"] not in secret:
                    return f'secret "{ref["name"]}" not found' if secret is None else f"couldn't find key {ref['key']}"
                env[var["name"]] = secret[ref["key"]]
            else:
                env[var["name"]] = var.get("value", "")
        return env

    async def _run(self, pod: _Pod) -> None:
        """Schedule the pod, start its container, stream its output into the log, and record how it ended."""
        spec, status = pod.body["spec"], pod.body["status"]
        await asyncio.sleep(0.2)
        if "deletionTimestamp" in pod.body["metadata"]:
            return
        why = self._unschedulable(spec)
        if why is not None:
            condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why}
            status["conditions"] = [condition | {"lastTransitionTime": _now()}]
            self._event(pod, "FailedScheduling", why, "Warning")
            self._touch(pod)
            return  # this stand-in's node never changes: the pod stays Pending until deleted
        spec["nodeName"] = NODE
        status["conditions"] = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()}]
        self._event(pod, "Scheduled", f"Successfully assigned {pod.key[0]}/{pod.key[1]} to {NODE}")
        container = spec["containers"][0]
        env = self._env(pod, container)
        if isinstance(env, str):
            waiting = {"reason": "CreateContainerConfigError", "message": env}
            status["containerStatuses"] = [self._container_status(container, {"waiting": waiting}, False)]
            self._event(pod, "Failed", f"Error: {env}", "Warning")
            self._touch(pod)
            return
        command = [*container.get("command", []), *container.get("args", [])]
        if command[:1] == ["python"]:
            command[0] = sys.executable  # the image's interpreter is this one
        workdir = self.work_dir / "containers" / pod.key[1]
        workdir.mkdir(parents=True, exist_ok=True)
        pod.process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        if "deletionTimestamp" in pod.body["metadata"]:  # deleted while the container was being created
            await self._kill(pod, grace=0)
        started = _now()
        self._event(pod, "Started", f"Started container {container['name']}")
        status.update(phase="Running", startTime=started, hostIP="127.0.0.1", podIP="127.0.0.1")
        status["containerStatuses"] = [self._container_status(container, {"running": {"startedAt": started}}, True)]
        self._touch(pod)
        self.started.append((pod.key[1], env))
        assert pod.process.stdout is not None
        async for raw in pod.process.stdout:
            pod.log.append((datetime.now(UTC), raw.decode(errors="replace").rstrip("\n")))
            self._touch(pod)
        code = await pod.process.wait()
        if status.get("reason") == "Evicted":
            return
        terminated: dict[str, Any] = {
            "exitCode": code if code >= 0 else 128 - code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": _now(),
        }
        if code and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            tail = "\n".join(line for _, line in pod.log[-_TERMINATION_LOG_LINES:])
            terminated["message"] = tail.encode()[-_TERMINATION_LOG_BYTES:].decode(errors="replace")
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        status["containerStatuses"] = [self._container_status(container, {"terminated": terminated}, False)]
        self._touch(pod)

    @staticmethod
    def _container_status(container: dict[str, Any], state: dict[str, Any], ready: bool) -> dict[str, Any]:
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": ready,
            "state": state,
        }

    @staticmethod
    def _terminated(pod: _Pod) -> bool:
        return pod.body["status"]["phase"] in ("Succeeded", "Failed")

    async def _kill(self, pod: _Pod, grace: int) -> None:
        """SIGTERM the container's process group, SIGKILL it after ``grace`` seconds."""
        process = pod.process
        if process is None or process.returncode is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), wait)
                return
