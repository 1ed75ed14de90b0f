from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect
from sqlmodel import func, select

from core.records import READER_FIELDS, NoticeRecord
from storage.db import make_engine, session_scope, upgrade
from storage.ingest import ingest
from storage.models import Notice, NoticeVersion, Sighting


def rec(**kw) -> NoticeRecord:
    base = dict(
        source="cellar",
        external_id="32021R2282",
        celex="32021R2282",
        title_en="Regulation (EU) 2021/2282 on health technology assessment",
        title_fr="Règlement (UE) 2021/2282 concernant l'évaluation des technologies de la santé",
        published_at=datetime(2021, 12, 22, tzinfo=UTC),
        kind="act",
        doc_type="REG",
    )
    base.update(kw)
    return NoticeRecord(**base)


def count(engine, model) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_same_batch_twice_changes_nothing(engine):
    batch = [
        rec(),
        rec(
            source="eurlex-rss",
            external_id="guid-1",
            url="https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:32021R2282",
        ),
    ]
    first = ingest(engine, batch)
    assert (first.new, first.seen) == (1, 2)
    with session_scope(engine) as s:
        before = [(n.id, n.version, n.content_hash, n.updated_at) for n in s.exec(select(Notice))]
    second = ingest(engine, batch)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 2)
    with session_scope(engine) as s:
        after = [(n.id, n.version, n.content_hash, n.updated_at) for n in s.exec(select(Notice))]
    assert before == after
    assert count(engine, NoticeVersion) == count(engine, Notice) + (1 if first.updated else 0)


def test_same_act_from_three_sources_is_one_notice(engine):
    stats = ingest(
        engine,
        [
            rec(),
            rec(
                source="eurlex-rss",
                external_id="https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELLAR:abc",
                title_fr=None,
                summary_en=None,
            ),
            rec(source="oeil", external_id="2018/0018(COD)", procedure="2018/0018(COD)", title_fr=None),
        ],
    )
    assert count(engine, Notice) == 1
    assert count(engine, Sighting) == 3
    assert stats.new == 1
    with session_scope(engine) as s:
        n = s.exec(select(Notice)).one()
        # an empty value from a poorer source never erases what a richer one gave
        assert n.title_fr.startswith("Règlement")
        assert n.procedure == "2018/0018(COD)"


def test_changed_text_is_a_new_version(engine):
    ingest(engine, [rec(summary_en="first text")])
    stats = ingest(engine, [rec(summary_en="second text")])
    assert stats.updated == 1
    with session_scope(engine) as s:
        n = s.exec(select(Notice)).one()
        versions = s.exec(select(NoticeVersion).order_by(NoticeVersion.version)).all()
    assert n.version == 2 and n.summary_en == "second text"
    assert [v.reason for v in versions] == ["new", "changed"]
    assert versions[0].snapshot["summary_en"] == "first text"


def test_changed_eurovoc_of_the_same_record_reaches_the_notice(engine):
    """The record hash covers every field a reader sees: it once left out EuroVoc and kind, so such a change was
    taken for an unchanged sighting and never reached the notice."""
    ingest(engine, [rec(eurovoc=["health technology"])])
    stats = ingest(engine, [rec(eurovoc=["health technology", "medical device"])])
    assert stats.updated == 1 and stats.unchanged == 0
    with session_scope(engine) as s:
        n = s.exec(select(Notice)).one()
        versions = s.exec(select(NoticeVersion).order_by(NoticeVersion.version)).all()
    assert n.version == 2 and n.eurovoc == ["health technology", "medical device"]
    assert versions[0].snapshot["eurovoc"] == ["health technology"]


def test_what_a_reader_sees_is_declared_once_and_every_copy_agrees():
    from storage import ingest as ingest_module

    assert ingest_module.HASHED is READER_FIELDS
    assert set(READER_FIELDS) <= set(NoticeRecord.model_fields) & set(Notice.model_fields)
    # Ingest merges each of them into the notice (else the hash would cover a field that never changes there).
    merged = set(ingest_module.MERGED_FIELDS) | set(ingest_module.LIST_FIELDS) | {"celex", "kind"}
    assert set(READER_FIELDS) <= merged and "lang" not in READER_FIELDS
    a, b = rec(), rec(eurovoc=["x"])
    assert a.content_hash() != b.content_hash() and a.content_hash() == rec(lang="en").content_hash()


def test_corrigendum_is_a_version_of_its_act(engine):
    ingest(engine, [rec()])
    ingest(
        engine,
        [
            rec(
                source="eurlex-rss",
                external_id="corr",
                celex="32021R2282R(02)",
                title_en="Corrigendum to Regulation (EU) 2021/2282",
            )
        ],
    )
    ingest(
        engine,
        [
            rec(
                source="eurlex-rss",
                external_id="corr",
                celex="32021R2282R(02)",
                title_en="Corrigendum to Regulation (EU) 2021/2282",
            )
        ],
    )
    with session_scope(engine) as s:
        n = s.exec(select(Notice)).one()
        versions = s.exec(select(NoticeVersion).order_by(NoticeVersion.version)).all()
    assert n.celex == "32021R2282"
    assert n.title_en.startswith("Regulation")  # the act keeps its title
    assert n.extra["corrigenda"] == ["32021R2282R(02)"]
    assert [v.reason for v in versions] == ["new", "corrigendum 32021R2282R(02)"]


def test_moved_deadline_is_recorded(engine):
    ingest(engine, [rec(source="hys", external_id="123", celex=None, kind="consultation", deadline=date(2026, 5, 1))])
    ingest(engine, [rec(source="hys", external_id="123", celex=None, kind="consultation", deadline=date(2026, 5, 15))])
    with session_scope(engine) as s:
        v = s.exec(select(NoticeVersion).order_by(NoticeVersion.version.desc())).first()
    assert v.reason == "deadline moved"


def test_crash_mid_batch_leaves_archive_as_before(engine):
    ingest(engine, [rec()])

    def batch():
        yield rec(source="x", external_id="new-1", celex="32024R1689", title_en="AI Act")
        yield rec(summary_en="changed")
        raise RuntimeError("crawler died")

    with pytest.raises(RuntimeError):
        ingest(engine, batch())
    assert count(engine, Notice) == 1
    assert count(engine, NoticeVersion) == 1
    with session_scope(engine) as s:
        assert s.exec(select(Notice)).one().summary_en is None


def test_same_page_different_kind_stays_two_notices(engine):
    url = "https://ec.europa.eu/info/law/better-regulation/have-your-say/initiatives/18805"
    ingest(
        engine,
        [
            rec(source="hys", external_id="18805", celex=None, kind="consultation", url=url, title_en="Consultation"),
            rec(
                source="hys",
                external_id="18805-draft",
                celex=None,
                kind="draft_act",
                url=url + "#draft-act",
                title_en="Draft act",
            ),
            rec(source="other", external_id="x", celex=None, kind="consultation", url=url, title_en="Consultation"),
        ],
    )
    with session_scope(engine) as s:
        kinds = sorted(n.kind for n in s.exec(select(Notice)))
    assert kinds == ["consultation", "draft_act"]
    assert count(engine, Sighting) == 3


def test_archives_opened_from_several_threads_at_once_are_all_migrated(tmp_path):
    # Alembic's env.py context is module-global: concurrent first opens must not tear it down.
    urls = [f"sqlite:///{tmp_path / f'a{i}.db'}" for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(upgrade, urls))  # raises here if two migrations collide
    for url in urls:
        assert "notice" in inspect(make_engine(url)).get_table_names()
