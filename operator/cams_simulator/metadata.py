"""Stand-ins for where a pod without keys finds credentials: the ECS metadata server (the node's RAM role,
with IMDSv2's session token) and a credentials URI. Both hand out STS credentials of the configured
instance role's account, which the simulator's gateway then accepts, so an operator that uses them calls
CAMS like any other. Served by the simulator on its own port: the operator's metadata address is a
setting (CAMS_METADATA_ENDPOINT), pointed here by the tests."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from aiohttp import web

from cams_simulator.config import InstanceRoleConfig
from cams_simulator.core import Simulator

ROLE_PATH = "/latest/meta-data/ram/security-credentials/"
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"


class InstanceMetadata:
    """The metadata server's answers for one simulator (tokens it issued; what was asked, for tests)."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.tokens: set[str] = set()
        self.asked: list[str] = []  # "PUT /latest/api/token", "GET <path> (token)" ...

    @property
    def role(self) -> InstanceRoleConfig:
        role = self.simulator.config.instance_role
        if role is None:
            raise web.HTTPNotFound(text="no RAM role is attached to this instance")
        return role

    async def token(self, request: web.Request) -> web.Response:
        self.asked.append("PUT /latest/api/token")
        if not self.role.offers_token:
            raise web.HTTPNotFound(text="no such path")
        if not request.headers.get(TTL_HEADER, "").isdigit():
            raise web.HTTPBadRequest(text=f"{TTL_HEADER} is required")
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return web.Response(text=token)

    def _authorized(self, request: web.Request) -> None:
        token = request.headers.get(TOKEN_HEADER)
        self.asked.append(f"GET {request.path} ({'token' if token else 'no token'})")
        if token is not None and token not in self.tokens:
            raise web.HTTPUnauthorized(text="invalid metadata token")
        if token is None and self.role.require_token:
            raise web.HTTPForbidden(text="this instance requires a metadata token (IMDSv2)")

    async def role_name(self, request: web.Request) -> web.Response:
        self._authorized(request)
        return web.Response(text=self.role.role_name)

    async def role_credentials(self, request: web.Request) -> web.Response:
        self._authorized(request)
        if request.match_info["role"] != self.role.role_name:
            raise web.HTTPNotFound(text="no such role")
        return web.json_response(self._credentials())

    async def credentials_uri(self, request: web.Request) -> web.Response:
        """ALIBABA_CLOUD_CREDENTIALS_URI's answer: the same role's credentials."""
        self.asked.append("GET credentials URI")
        return web.json_response(self._credentials())

    async def log(self, request: web.Request) -> web.Response:
        """What was asked of the stand-ins, in order (for tests: was the session token sent?)."""
        return web.json_response(self.asked)

    def _credentials(self) -> dict[str, str]:
        role = self.role
        issued = self.simulator.issue(role.uid, role.spaces, role.issued_lifetime_seconds, datetime.now(UTC))
        return {"Code": "Success", "LastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **issued}


def add_routes(app: web.Application, metadata: InstanceMetadata) -> None:
    app.router.add_put("/latest/api/token", metadata.token)
    app.router.add_get(ROLE_PATH, metadata.role_name)
    app.router.add_get(ROLE_PATH + "{role}", metadata.role_credentials)
    app.router.add_get("/_simulator/credentials-uri", metadata.credentials_uri)
    app.router.add_get("/_simulator/metadata", metadata.log)
