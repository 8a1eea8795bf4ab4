"""catalog.sqlite: one row per clip (origin, status, lease, timestamps) and an append-only audit log.

WAL mode so that the web app's readers never block a writer. Schema versions live in
PRAGMA user_version; MIGRATIONS[i] brings a catalog from version i to i + 1, applied in order on open.
Each Catalog object holds its own connection: open one per thread/process.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.errors import UserError
from schemas.models import AuditEntry, CatalogRow, ClipStatus, now_utc

MIGRATIONS: list[str] = [
    # 0 -> 1
    """
    CREATE TABLE clips (
        clip_id TEXT PRIMARY KEY,
        origin TEXT NOT NULL,
        category TEXT NOT NULL,
        status TEXT NOT NULL,
        data TEXT NOT NULL,              -- the full CatalogRow as JSON
        lease_owner TEXT,
        lease_expires TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX clips_status ON clips(status);
    CREATE INDEX clips_category ON clips(category);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        clip_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        before TEXT,
        after TEXT,
        note TEXT
    );
    CREATE INDEX audit_clip ON audit(clip_id, id);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class LeaseHeld(UserError):
    """The clip is leased by someone else."""


@dataclass(frozen=True)
class Lease:
    clip_id: str
    owner: str
    expires: datetime


class Catalog:
    def __init__(self, path: str | Path, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise UserError(f"{self.path}: no catalog here; create the root with DatasetRoot.create or ssu-synth")
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(f"{self.path}: catalog schema v{version} is newer than this ra-ssu (v{SCHEMA_VERSION}); "
                            "upgrade ra-ssu")
        for i in range(version, SCHEMA_VERSION):
            with self._tx():
                # executescript would COMMIT our transaction; run statement by statement instead
                for stmt in MIGRATIONS[i].split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version={i + 1}")

    def _tx(self) -> Any:
        db = self._db

        class _T:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, et: object, *a: object) -> None:
                db.execute("COMMIT" if et is None else "ROLLBACK")

        return _T()

    # -- rows -------------------------------------------------------------------------------------
    @staticmethod
    def _row(r: sqlite3.Row) -> CatalogRow:
        return CatalogRow.model_validate_json(r["data"])

    def upsert(self, row: CatalogRow, actor: str = "system", action: str = "upsert") -> None:
        row = row.model_copy(update={"updated_at": now_utc()})
        with self._tx():
            old = self._db.execute("SELECT data FROM clips WHERE clip_id=?", (row.clip_id,)).fetchone()
            self._put(row)
            self._audit(row.clip_id, actor, action, json.loads(old["data"]) if old else None,
                        row.model_dump(mode="json"), None)

    def _put(self, row: CatalogRow) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO clips(clip_id, origin, category, status, data, lease_owner, lease_expires,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (row.clip_id, row.origin.value, row.category, row.status.value, row.model_dump_json(), row.lease_owner,
             row.lease_expires.isoformat() if row.lease_expires else None, row.created_at.isoformat(),
             row.updated_at.isoformat()))

    def get(self, clip_id: str) -> CatalogRow | None:
        r = self._db.execute("SELECT data FROM clips WHERE clip_id=?", (clip_id,)).fetchone()
        return self._row(r) if r else None

    def rows(self, status: ClipStatus | set[ClipStatus] | None = None, category: str | None = None) -> list[CatalogRow]:
        q, args = "SELECT data FROM clips WHERE 1=1", []
        if status is not None:
            sts = [status] if isinstance(status, ClipStatus) else sorted(status)
            q += f" AND status IN ({','.join('?' * len(sts))})"
            args += [s.value for s in sts]
        if category is not None:
            q += " AND category=?"
            args.append(category)
        return [self._row(r) for r in self._db.execute(q + " ORDER BY clip_id", args)]

    def __iter__(self) -> Iterator[CatalogRow]:
        return iter(self.rows())

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM clips").fetchone()[0])

    def counts(self) -> dict[ClipStatus, int]:
        return {ClipStatus(r[0]): r[1] for r in self._db.execute("SELECT status, COUNT(*) FROM clips GROUP BY status")}

    def set_status(self, clip_id: str, status: ClipStatus, actor: str, reason: str | None = None,
                   note: str | None = None) -> CatalogRow:
        with self._tx():
            row = self._require(clip_id)
            new = row.model_copy(update={"status": status, "reason": reason, "updated_at": now_utc()})
            self._put(new)
            self._audit(clip_id, actor, "status", {"status": row.status.value}, {"status": status.value,
                        "reason": reason}, note)
        return new

    def delete(self, clip_id: str, actor: str = "system") -> None:
        with self._tx():
            self._db.execute("DELETE FROM clips WHERE clip_id=?", (clip_id,))
            self._audit(clip_id, actor, "delete", None, None, None)

    def _require(self, clip_id: str) -> CatalogRow:
        r = self._db.execute("SELECT data FROM clips WHERE clip_id=?", (clip_id,)).fetchone()
        if r is None:
            raise UserError(f"{self.path}: unknown clip id {clip_id!r}")
        return self._row(r)

    # -- leases -----------------------------------------------------------------------------------
    def claim(self, clip_id: str, owner: str, ttl: timedelta = timedelta(minutes=30)) -> Lease:
        """Lease a clip to `owner` (renews an own lease). Raises LeaseHeld if another holds a live lease."""
        now = now_utc()
        with self._tx():
            row = self._require(clip_id)
            if row.lease_owner and row.lease_owner != owner and row.lease_expires and row.lease_expires > now:
                raise LeaseHeld(f"clip {clip_id} is being edited by {row.lease_owner} until "
                                f"{row.lease_expires:%H:%M} UTC; pick another clip")
            lease = Lease(clip_id, owner, now + ttl)
            self._put(row.model_copy(update={"lease_owner": owner, "lease_expires": lease.expires}))
            if row.lease_owner != owner:
                self._audit(clip_id, owner, "claim", None, {"expires": lease.expires.isoformat()}, None)
        return lease

    def claim_next(self, owner: str, statuses: set[ClipStatus], category: str | None = None,
                   ttl: timedelta = timedelta(minutes=30)) -> Lease | None:
        """Claim the first clip in `statuses` (and category) with no live lease of someone else."""
        now = now_utc().isoformat()
        sts = sorted(statuses)
        q = (f"SELECT clip_id FROM clips WHERE status IN ({','.join('?' * len(sts))})"
             " AND (lease_owner IS NULL OR lease_owner=? OR lease_expires<?)")
        args: list[Any] = [s.value for s in sts] + [owner, now]
        if category:
            q += " AND category=?"
            args.append(category)
        for (clip_id,) in self._db.execute(q + " ORDER BY clip_id", args).fetchall():
            try:
                return self.claim(clip_id, owner, ttl)
            except LeaseHeld:
                continue  # lost a race with another refiner
        return None

    def release(self, clip_id: str, owner: str) -> None:
        with self._tx():
            row = self._require(clip_id)
            if row.lease_owner == owner:
                self._put(row.model_copy(update={"lease_owner": None, "lease_expires": None}))
                self._audit(clip_id, owner, "release", None, None, None)

    def lease_of(self, clip_id: str) -> Lease | None:
        row = self._require(clip_id)
        if row.lease_owner and row.lease_expires and row.lease_expires > now_utc():
            return Lease(clip_id, row.lease_owner, row.lease_expires)
        return None

    # -- audit ------------------------------------------------------------------------------------
    def _audit(self, clip_id: str, actor: str, action: str, before: Any, after: Any, note: str | None) -> int:
        cur = self._db.execute(
            "INSERT INTO audit(ts, clip_id, actor, action, before, after, note) VALUES (?,?,?,?,?,?,?)",
            (now_utc().isoformat(), clip_id, actor, action,
             None if before is None else json.dumps(before), None if after is None else json.dumps(after), note))
        return int(cur.lastrowid or 0)

    def audit(self, clip_id: str, actor: str, action: str, before: Any = None, after: Any = None,
              note: str | None = None) -> int:
        """Append one audit row (who, what, before/after as JSON-able values); returns its id."""
        with self._tx():
            return self._audit(clip_id, actor, action, before, after, note)

    def history(self, clip_id: str | None = None, action: str | None = None, since_id: int = 0) -> list[AuditEntry]:
        q, args = "SELECT * FROM audit WHERE id>?", [since_id]
        if clip_id is not None:
            q += " AND clip_id=?"
            args.append(clip_id)
        if action is not None:
            q += " AND action=?"
            args.append(action)
        return [AuditEntry(id=r["id"], ts=datetime.fromisoformat(r["ts"]), clip_id=r["clip_id"], actor=r["actor"],
                           action=r["action"], before=json.loads(r["before"]) if r["before"] else None,
                           after=json.loads(r["after"]) if r["after"] else None, note=r["note"])
                for r in self._db.execute(q + " ORDER BY id", args)]
