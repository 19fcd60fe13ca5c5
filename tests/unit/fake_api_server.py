"""A small stand-in for the API server, for the unit tests of the operator's own listing code run through the
official asyncio client (the end-to-end tier runs the same code against a real kube-apiserver): objects by
path, listings in pages with continue tokens (which can be made to expire), reads of single objects, and a
record of every request with its path as received."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kubernetes.aio import client

from tests.unit.local_http import serving


@dataclass
class FakeApiServer:
    # listing path -> objects, in order
    collections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, raw path, query
    accepts: list[str] = field(default_factory=list)
    expire_tokens: int = 0  # how many continue tokens to refuse with 410 Expired
    failures: int = 0  # how many requests to answer with 500 first
    hidden: set[str] = field(default_factory=set)  # names left out of listings, yet there when read

    def put(self, collection: str, *names: str, namespace: str | None = None) -> None:
        for name in names:
            meta = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"}
            if namespace:
                meta["namespace"] = namespace
            self.collections.setdefault(collection, []).append({"metadata": meta, "spec": {}})

    def remove(self, collection: str, name: str) -> None:
        self.collections[collection] = [
            o for o in self.collections[collection] if o["metadata"]["name"] != name
        ]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append((request.method, request.raw_path.split("?")[0], query))
        self.accepts.append(request.headers.get("Accept", ""))
        if self.failures:
            self.failures -= 1
            return _status(500, "InternalError")
        path = request.path
        if path in self.collections:
            return self._page(path, query)
        parts = path.split("/")
        namespace = parts[parts.index("namespaces") + 1] if "namespaces" in parts[:-2] else None
        for objects in self.collections.values():
            for found in objects:
                meta = found["metadata"]
                if (meta["name"], meta.get("namespace")) == (parts[-1], namespace):
                    return web.json_response(found)
        return _status(404, "NotFound")

    def _page(self, path: str, query: dict[str, str]) -> web.StreamResponse:
        items = [o for o in self.collections[path] if o["metadata"]["name"] not in self.hidden]
        start = 0
        if "continue" in query:
            if self.expire_tokens:
                self.expire_tokens -= 1
                return _status(410, "Expired")
            start = int(query["continue"])
        limit = int(query.get("limit", len(items) or 1))
        page = items[start : start + limit]
        following = start + limit
        meta = {"resourceVersion": "7", **({"continue": str(following)} if following < len(items) else {})}
        return web.json_response({"items": page, "metadata": meta})


def _status(code: int, reason: str) -> web.StreamResponse:
    body = {"kind": "Status", "status": "Failure", "reason": reason, "code": code}
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


@asynccontextmanager
async def api_client(server: FakeApiServer) -> AsyncIterator[client.ApiClient]:
    """The official asyncio client, pointed at `server`."""
    async with serving(server.handle) as url:
        configuration = client.Configuration(host=url)
        configuration.retries = None
        api = client.ApiClient(configuration)
        try:
            yield api
        finally:
            await api.close()  # type: ignore[no-untyped-call]
