"""Persisted queries: the safelist from a manifest, and APQ (automatic persisted queries).

- Safelisting reads a manifest in Apollo's format (``frontend_contract/manifest.json``:
  ``{"format": "apollo-persisted-query-manifest", "operations": [{id, body, …}]}``).
  Modes: ``off``; ``allow`` (manifest ids resolve, any query runs); ``safelist``
  (only manifest operations, by id or by identical body); ``require-id`` (only
  by id).
- APQ follows Apollo's protocol: ``extensions.persistedQuery {version: 1,
  sha256Hash}``. A hash alone is looked up (``PERSISTED_QUERY_NOT_FOUND`` when
  unknown, and the client resends with the query); a query with a hash is checked
  against it and stored (in Redis, so every router replica shares it). GET
  requests carrying only the hash work, so they can be cached by a CDN.
  A manifest id (``extensions.persistedQuery.id``) resolves from the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from router.admission import REFUSALS
from router.cache import KeyValue
from router.errors import RouterError
from router.request import GraphQLRequest


@dataclass(frozen=True)
class Manifest:
    by_id: dict[str, str]
    bodies: frozenset[str]

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != "apollo-persisted-query-manifest":
            raise ValueError(f"{path} is not an Apollo persisted-query manifest")
        by_id = {str(op["id"]): str(op["body"]) for op in data.get("operations", [])}
        return cls(by_id, frozenset(by_id.values()))


def _not_found() -> RouterError:
    return RouterError.of("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", 200)


log = logging.getLogger("shopgraph.router")


class PersistedQueries:
    def __init__(
        self, mode: str, manifest: Manifest | None, apq: KeyValue | None, max_entry_bytes: int = 32_768
    ) -> None:
        self.mode = mode
        self.manifest = manifest
        self.apq = apq
        self.max_entry_bytes = max_entry_bytes

    async def resolve(self, request: GraphQLRequest) -> str:
        """The request's query text, from the request, the manifest or the APQ store."""
        pq = (request.extensions or {}).get("persistedQuery")
        if pq is not None and not isinstance(pq, dict):
            raise RouterError.of("'extensions.persistedQuery' must be an object.", "BAD_REQUEST")
        pq = pq or {}
        manifest_id = pq.get("id")
        sha = pq.get("sha256Hash")
        if manifest_id is not None:
            return self._by_id(manifest_id, request.query)
        if self.mode == "require-id":
            raise RouterError.of(
                "This router only runs persisted operations sent by id.", "PERSISTED_QUERY_ID_REQUIRED"
            )
        if sha is not None:
            if self.manifest is not None and self.mode != "off" and sha in self.manifest.by_id:
                # Apollo Client's persisted-query link sends the manifest's ids as sha256Hash.
                return self._by_id(sha, request.query)
            text = await self._apq(pq, sha, request.query)
        elif request.query is None:
            raise RouterError.of("The request has no 'query' string.", "BAD_REQUEST")
        else:
            text = request.query
        self._check_listed(text)
        return text

    def _check_listed(self, text: str) -> None:
        if self.mode == "safelist" and self.manifest is not None and text not in self.manifest.bodies:
            raise RouterError.of(
                "This operation is not in the persisted-query safelist.", "PERSISTED_QUERY_NOT_IN_LIST", 403
            )

    def _by_id(self, manifest_id: object, query: str | None) -> str:
        if self.manifest is None or self.mode == "off":
            raise RouterError.of("Persisted operations by id are not enabled.", "PERSISTED_QUERY_NOT_SUPPORTED")
        text = self.manifest.by_id.get(str(manifest_id))
        if text is None:
            raise RouterError.of(f"No persisted operation with id {manifest_id}.", "PERSISTED_QUERY_NOT_IN_LIST")
        if query is not None and query != text:
            raise RouterError.of("The query does not match the persisted operation's body.", "BAD_REQUEST")
        return text

    async def register(self, request: GraphQLRequest, text: str) -> None:
        """Store an APQ query that was sent with its hash, now that its request passed every stage."""
        pq = (request.extensions or {}).get("persistedQuery")
        if self.apq is None or request.query is None or not isinstance(pq, dict):
            return
        sha = pq.get("sha256Hash")
        if not isinstance(sha, str) or pq.get("id") is not None:
            return
        if len(text.encode()) > self.max_entry_bytes:
            REFUSALS.labels("apq_entry_too_large").inc()
            log.info("APQ entry not stored: %d bytes, over %d", len(text.encode()), self.max_entry_bytes)
            return
        if not await self.apq.put(sha.lower(), text):
            REFUSALS.labels("apq_store_full").inc()
            log.warning("APQ store full: entry not stored (persisted_queries.apq_max_total_bytes)")

    async def _apq(self, pq: dict[str, object], sha: object, query: str | None) -> str:
        if self.apq is None:
            raise RouterError.of("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")
        if pq.get("version", 1) != 1 or not isinstance(sha, str):
            raise RouterError.of("Unsupported persisted query version or hash.", "BAD_REQUEST")
        if query is None:
            text = await self.apq.get(sha)
            if text is None:
                raise _not_found()
            return text
        if hashlib.sha256(query.encode()).hexdigest() != sha.lower():
            raise RouterError.of("provided sha does not match query", "PERSISTED_QUERY_HASH_MISMATCH")
        return query  # stored by register() once it has validated
