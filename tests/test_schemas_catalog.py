import sqlite3
import threading
from datetime import timedelta

import pytest

from schemas.catalog import SCHEMA_VERSION, Catalog, LeaseHeld
from schemas.errors import UserError
from schemas.models import CatalogRow, ClipStatus, Origin


def row(i: int, cat: str = "violin", status: ClipStatus = ClipStatus.auto) -> CatalogRow:
    return CatalogRow(clip_id=f"c{i}", origin=Origin.synthetic, category=cat, status=status)


@pytest.fixture()
def cat(tmp_path):
    c = Catalog(tmp_path / "catalog.sqlite", create=True)
    for i in range(4):
        c.upsert(row(i, "violin" if i % 2 else "piano"))
    yield c
    c.close()


def test_wal_and_schema_version(cat, tmp_path):
    db = sqlite3.connect(tmp_path / "catalog.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_refused(tmp_path):
    p = tmp_path / "c.sqlite"
    Catalog(p, create=True).close()
    db = sqlite3.connect(p)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(UserError, match="newer"):
        Catalog(p)


def test_rows_filters_and_counts(cat):
    assert len(cat) == 4
    assert [r.clip_id for r in cat.rows(category="piano")] == ["c0", "c2"]
    cat.set_status("c1", ClipStatus.accepted, actor="bob")
    assert [r.clip_id for r in cat.rows(status=ClipStatus.accepted)] == ["c1"]
    assert cat.counts() == {ClipStatus.auto: 3, ClipStatus.accepted: 1}


def test_lease_blocks_others_and_expires(cat):
    cat.claim("c0", "alice")
    with pytest.raises(LeaseHeld, match="alice"):
        cat.claim("c0", "bob")
    cat.claim("c0", "alice")  # renew own
    cat.claim("c1", "alice", ttl=timedelta(seconds=-1))  # already expired
    cat.claim("c1", "bob")
    assert cat.lease_of("c1").owner == "bob"
    cat.release("c0", "alice")
    assert cat.lease_of("c0") is None


def test_claim_next_skips_leased(cat):
    a = cat.claim_next("alice", {ClipStatus.auto})
    b = cat.claim_next("bob", {ClipStatus.auto})
    assert a.clip_id != b.clip_id
    assert cat.claim_next("carol", {ClipStatus.auto}, category="piano").clip_id == "c2"


def test_concurrent_claims_one_winner(tmp_path):
    p = tmp_path / "c.sqlite"
    with Catalog(p, create=True) as c:
        c.upsert(row(0))
    wins: list[str] = []

    def claim(owner: str) -> None:
        with Catalog(p) as c:
            try:
                c.claim("c0", owner)
                wins.append(owner)
            except LeaseHeld:
                pass

    ts = [threading.Thread(target=claim, args=(f"u{i}",)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(wins) == 1


def test_audit_log_records_before_after(cat):
    cat.set_status("c0", ClipStatus.in_progress, actor="alice")
    i = cat.audit("c0", "alice", "edit_caption", before={"text": "a"}, after={"text": "b"})
    h = cat.history("c0")
    assert h[-1].id == i and h[-1].before == {"text": "a"} and h[-1].actor == "alice"
    assert any(e.action == "status" and e.after["status"] == "in_progress" for e in h)


def test_unknown_clip_is_user_error(cat):
    with pytest.raises(UserError, match="unknown clip id"):
        cat.set_status("nope", ClipStatus.accepted, actor="x")


def test_missing_catalog_is_user_error(tmp_path):
    with pytest.raises(UserError, match="no catalog"):
        Catalog(tmp_path / "missing.sqlite")
