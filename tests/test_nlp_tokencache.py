"""The token cache: what goes in comes back (across periodic flushes and compaction); a changed notice wins."""

from __future__ import annotations

from nlp import tokencache
from nlp.text import Meta, parse_fields
from nlp.tokencache import TokenCache

TITLES = [
    "Règlement d'exécution relatif aux évaluations cliniques communes",
    "Joint clinical assessments of medicinal products",
    "Stratégie européenne en faveur des personnes handicapées",
    "Vaccination campaigns: EMA and ECDC statement",
    "Maximum residue levels for pesticides in food",
    "Espace européen des données de santé",
    "AI Act: guidelines on high-risk AI systems",
]


def parsed(title: str, celex: str = ""):
    return parse_fields([("title", None, title), ("summary", "en", "Health technology assessment")], Meta(celex=celex))


def stems(p) -> list[tuple[str, str, list[str]]]:
    return [(f.name, f.lang, f.stems) for f in p.fields]


def test_round_trip_across_flushes_and_compaction(tmp_path, monkeypatch):
    monkeypatch.setattr(tokencache, "FLUSH_EVERY", 2)  # a segment every two notices...
    monkeypatch.setattr(tokencache, "MAX_SEGMENTS", 3)  # ...and a merge past three segments
    cache = TokenCache(tmp_path)
    for nid, title in enumerate(TITLES, 1):
        cache.add_many([(nid, f"h{nid}", parsed(title, f"3202{nid}R0001"))])
    assert len(cache._pending) == 1  # six of seven were written as they came, without waiting for flush()
    cache.flush()
    assert len(list(tmp_path.glob("seg-*.npz"))) <= 3
    cache.add_many([(3, "h3-new", parsed("Carte européenne du handicap"))])  # the notice changed
    cache.add_many([(4, "h4", parsed("ignored: same hash, already cached"))])
    cache.flush()

    arch = TokenCache(tmp_path).load()  # a fresh reader: everything is on disk
    assert sorted(arch.nids.tolist()) == list(range(1, len(TITLES) + 1))
    by_id = {int(n): i for i, n in enumerate(arch.nids.tolist())}
    for nid, title in enumerate(TITLES, 1):
        expected = parsed("Carte européenne du handicap") if nid == 3 else parsed(title, f"3202{nid}R0001")
        got = arch.parsed(by_id[nid])
        assert stems(got) == stems(expected)
        assert got.meta.celex == expected.meta.celex
    assert TokenCache(tmp_path).known()[3] == "h3-new"
    handicap = arch.with_sequence(parsed("handicap").fields[0].stems)
    assert [int(arch.nids[i]) for i in handicap] == [3]


def test_a_new_text_version_starts_a_fresh_cache(tmp_path, monkeypatch):
    """Stems made by an earlier normalisation must not be read back: its cache is removed, not reused."""
    from types import SimpleNamespace

    settings = SimpleNamespace(home=tmp_path)
    old = TokenCache.for_settings(settings)
    old.add_many([(1, "h1", parsed(TITLES[0]))])
    old.flush()
    (tmp_path / "cache" / "nlp" / "seg-000001.npz").write_bytes(b"a cache from before the versioned layout")
    assert TokenCache.for_settings(settings).known() == {1: "h1"}  # same version: kept
    monkeypatch.setattr(tokencache, "TEXT_VERSION", tokencache.TEXT_VERSION + 1)
    fresh = TokenCache.for_settings(settings)
    assert fresh.known() == {} and fresh.vocab == []
    assert [p.name for p in (tmp_path / "cache" / "nlp").iterdir()] == [f"v{tokencache.TEXT_VERSION}"]
