"""The simulator over HTTP (aiohttp, which kopf already brings): CAMS's wire format on `POST /`, and a
small control API under `/_simulator/` for tests and benchmarks."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from aiohttp import web

from cams_simulator.core import Simulator
from cams_simulator.metadata import InstanceMetadata, add_routes
from cams_simulator.wire import Request

SIMULATOR_KEY = web.AppKey("simulator", Simulator)


async def _rpc(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    if request.query.get("Action") == "AssumeRoleWithOIDC":
        form = await request.post()
        status, answer = simulator.assume_role_with_oidc(
            {name: str(value) for name, value in form.items()},
            now=datetime.now(UTC),
            monotonic=time.monotonic(),
        )
        return web.json_response(answer, status=status)
    body = await request.read()
    if simulator.config.latency_ms:
        await asyncio.sleep(simulator.config.latency_ms / 1000)
    status, reply, headers = simulator.handle(
        Request(
            method=request.method,
            path=request.path,
            query={name: request.query[name] for name in request.query},
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
        ),
        now=datetime.now(UTC),
        monotonic=time.monotonic(),
    )
    if isinstance(reply, bytes):  # an answer that is not JSON (a gateway's page, a body cut short)
        return web.Response(body=reply, status=status, headers=headers)
    return web.json_response(reply, status=status, headers=headers)


async def _state(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIMULATOR_KEY].state())


async def _calls(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIMULATOR_KEY].calls_of(request.query.get("phoneNumber")))


async def _set_webhook(request: web.Request) -> web.Response:
    wanted = await request.json()
    request.app[SIMULATOR_KEY].set_webhook(wanted["CustSpaceId"], wanted["PhoneNumber"], wanted)
    return web.json_response({})


async def _reset(request: web.Request) -> web.Response:
    request.app[SIMULATOR_KEY].reset()
    return web.json_response({})


async def _faults(request: web.Request) -> web.Response:
    wanted = await request.json()
    request.app[SIMULATOR_KEY].set_faults(
        fail_rate=wanted.get("failRate"),
        latency_ms=wanted.get("latencyMs"),
        failure=wanted.get("failure"),
        empty_means_not_given=wanted.get("emptyMeansNotGiven"),
    )
    return web.json_response({})


def build_app(simulator: Simulator) -> web.Application:
    app = web.Application()
    app[SIMULATOR_KEY] = simulator
    app.router.add_post("/", _rpc)
    app.router.add_get("/_simulator/state", _state)
    app.router.add_get("/_simulator/calls", _calls)
    app.router.add_post("/_simulator/reset", _reset)
    app.router.add_post("/_simulator/webhooks", _set_webhook)
    app.router.add_post("/_simulator/faults", _faults)
    add_routes(app, InstanceMetadata(simulator))
    return app
