"""A minimal Confluent Schema Registry client (aiohttp): register, look up, fetch by id.

It is the only place that talks to the registry: the encoders and the decoder are given a
client and ask it for a schema's id (:meth:`SchemaRegistryClient.schema_id`) or an id's
schema (:meth:`SchemaRegistryClient.schema_definition`).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from ingester.encode.errors import RegistryError

__all__ = ["SchemaRegistryClient"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryClient:
    """Talks to one registry; credentials in the URL become basic auth and are never printed."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        parsed = URL(url)
        self._headers = {"Accept": _CONTENT_TYPE}
        if parsed.user is not None:
            credentials = f"{parsed.user}:{parsed.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        #: The registry's base URL without credentials (safe to log).
        self.url = parsed.with_user(None).with_password(None)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def schema_id(self, subject: str, definition: Any, *, register: bool = True) -> int:
        """The id of the schema ``definition`` (its JSON data) under ``subject``: registered
        (idempotent) when ``register``, else looked up; raise :class:`RegistryError`."""
        schema_json = json.dumps(definition, separators=(",", ":"))
        if register:
            return await self.register(subject, schema_json)
        return await self.lookup(subject, schema_json)

    async def schema_definition(self, schema_id: int) -> Any:
        """The schema registered with ``schema_id``, as JSON data; raise :class:`RegistryError`."""
        text = await self.schema_by_id(schema_id)
        try:
            return json.loads(text)
        except ValueError:
            raise RegistryError(
                f"schema registry {self.url}: schema id {schema_id}: schema is not JSON"
            ) from None

    async def register(self, subject: str, schema_json: str) -> int:
        """Register ``schema_json`` under ``subject`` (idempotent); return its global id."""
        body = await self._request(
            "POST", f"subjects/{quote(subject, safe='')}/versions", schema_json
        )
        return _schema_id(body)

    async def lookup(self, subject: str, schema_json: str) -> int:
        """The id of ``schema_json`` already registered under ``subject``."""
        body = await self._request("POST", f"subjects/{quote(subject, safe='')}", schema_json)
        return _schema_id(body)

    async def schema_by_id(self, schema_id: int) -> str:
        """The schema text registered with ``schema_id``."""
        body = await self._request("GET", f"schemas/ids/{schema_id}", None)
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise RegistryError(f"schema registry {self.url}: schema id {schema_id}: no schema")
        return schema

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, schema_json: str | None) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        payload = None if schema_json is None else json.dumps({"schema": schema_json})
        where = f"schema registry {method} {self.url / path}"
        try:
            async with self._session.request(
                method,
                self.url / path,
                data=payload,
                headers={"Content-Type": _CONTENT_TYPE} if payload is not None else None,
            ) as response:
                text = await response.text()
                if response.status != 200:
                    detail = " ".join(text.split())[:200]
                    raise RegistryError(f"{where}: HTTP {response.status} {detail}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RegistryError(f"{where}: {type(exc).__name__} {exc}".strip()) from exc
        try:
            body = json.loads(text)
        except ValueError:
            raise RegistryError(f"{where}: response is not JSON") from None
        if not isinstance(body, dict):
            raise RegistryError(f"{where}: response is not a JSON object")
        return body


def _schema_id(body: dict[str, Any]) -> int:
    schema_id = body.get("id")
    if type(schema_id) is not int:
        raise RegistryError(f"schema registry response has no integer id: {str(body)[:200]}")
    return schema_id
