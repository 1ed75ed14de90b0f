"""Search benchmark: an archive of N synthetic notices, p50/p95 latency per query class; and the
cross-language measure on the demo archive.

    .venv/bin/python bench/search.py [--notices 1000000] [--queries 200] [--db PATH]
    .venv/bin/python bench/search.py --crosslang [--demo DIR]

``--crosslang`` builds the demo archive (``veille demo``: the shipped replay bundle through the whole
pipeline) unless ``--demo`` names one, and runs the 30 FR/EN query pairs of
``bench/data/crosslang_queries.json`` with and without the cross-language lexicon. For a pair, the
notices each query finds as written in its own language are the judged set; the French query's
targets are the English-only notices the English query finds (and the reverse). Recall: share of
the targets a query finds; precision: share of a query's results that are in the judged set.

Vocabulary comes from real EU titles and summaries (the shipped development set), drawn with a
Zipf-like law so that the archive has very common, mid-frequency and rare words, as real text does.
Each query class runs with and without a label + date filter, sorted by relevance and by date,
and a LIKE scan over titles runs side by side as the naive baseline.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import open_archive
from storage.fulltext import META_PREFIX, meta_token, search_key
from storage.search import Filters, search
from storage.textnorm import index_text

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["deai", "sante_publique", "daqss", "diqasm", "numerique", "international", "deontologie"]
LABEL_WEIGHTS = [0.08, 0.06, 0.04, 0.03, 0.06, 0.04, 0.01]


def corpus_texts() -> list[tuple[str, str]]:
    path = ROOT / "nlp" / "data" / "has_dev_notices.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        out.append((item.get("lang", "en"), f"{item['title']} {item.get('summary', '')}"))
    return out


def vocab(texts: list[tuple[str, str]]) -> dict[str, tuple[list[str], list[float]]]:
    per_lang: dict[str, Counter] = {"en": Counter(), "fr": Counter()}
    for lang, text in texts:
        per_lang.setdefault(lang, Counter()).update(text.split())
    out = {}
    for lang, counts in per_lang.items():
        ranked = [w for w, _ in counts.most_common()]
        cum, acc = [], 0.0
        for i in range(len(ranked)):
            acc += 1.0 / (i + 1) ** 1.05
            cum.append(acc)
        out[lang] = (ranked, cum)
    return out


def _terms(ws: list[str], lang: str, cache: dict) -> str:
    out = []
    for w in ws:
        t = cache.get((w, lang))
        if t is None:
            t = cache[(w, lang)] = index_text(w, lang)
        if t:
            out.append(t)
    return " ".join(out)


def build(db: Path, n: int, seed: int = 7) -> float:
    rnd = random.Random(seed)
    voc = vocab(corpus_texts())
    if db.exists():
        db.unlink()
    open_archive(f"sqlite:///{db}").dispose()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA journal_mode=WAL")
    start = time.perf_counter()
    terms: dict = {}
    day0 = date(2000, 1, 1)
    batch_n, batch_f, batch_l = [], [], []
    now = "2026-11-22 00:00:00"
    for i in range(1, n + 1):
        lang = "fr" if rnd.random() < 0.4 else "en"
        ranked, cum = voc[lang]
        t_words = rnd.choices(ranked, cum_weights=cum, k=rnd.randint(8, 22))
        s_words = rnd.choices(ranked, cum_weights=cum, k=rnd.randint(15, 40))
        # Real notices carry identifiers (CELEX): the long tail of rare terms that Zipf sampling of
        # a small vocabulary would not produce.
        t_words.append(f"3{rnd.randrange(2000, 2027)}R{rnd.randrange(1, 4000):04d}")
        title, summary = " ".join(t_words), " ".join(s_words)
        day = day0 + timedelta(days=rnd.randrange(0, 9800))
        key = search_key(i, day)
        t_en, t_fr = (title, None) if lang == "en" else (None, title)
        s_en, s_fr = (summary, None) if lang == "en" else (None, summary)
        batch_n.append(
            (
                i,
                t_en,
                t_fr,
                s_en,
                s_fr,
                lang,
                "bench",
                "act",
                day.isoformat(),  # a Brussels day (docs/decisions.md, "Dates")
                "[]",
                "[]",
                "[]",
                "{}",
                1,
                str(i),
                now,
                now,
                key,
            )
        )
        # index_text is word-by-word, so a per-word cache gives the same terms, faster.
        labels = []
        for label, w in zip(LABELS, LABEL_WEIGHTS, strict=True):
            if rnd.random() < w * 2:
                score = rnd.random()
                batch_l.append((i, label, score, score >= 0.5, "{}", "bench", now))
                if score >= 0.5:
                    labels.append(label)
        meta = " ".join(
            [meta_token("labels", lb) for lb in labels] + [meta_token("sources", "bench"), meta_token("kinds", "act")]
        )
        batch_f.append((key, _terms(t_words, lang, terms), _terms(s_words, lang, terms), "", meta))
        if len(batch_n) >= 20000 or i == n:
            conn.executemany(
                "INSERT INTO notice (id, title_en, title_fr, summary_en, summary_fr, lang, source, kind, published_at,"
                " related_acts, legal_basis, eurovoc, extra, version, content_hash, first_seen, updated_at, search_key)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                batch_n,
            )
            conn.executemany("INSERT INTO notice_fts(rowid, title, summary, body, meta) VALUES (?,?,?,?,?)", batch_f)
            conn.executemany(
                "INSERT INTO label_score (notice_id, label, score, selected, explanation, rules_version, scored_at)"
                " VALUES (?,?,?,?,?,?,?)",
                batch_l,
            )
            conn.commit()
            batch_n, batch_f, batch_l = [], [], []
            print(f"\r  built {i:,}/{n:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    conn.execute("INSERT INTO notice_fts(notice_fts) VALUES ('optimize')")
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return time.perf_counter() - start


def query_words(db: Path) -> dict[str, list[str]]:
    """Real words of the archive by document frequency: common (>5%), mid (0.1-1%), rare (<0.01%)."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.v USING fts5vocab(main, notice_fts, row)")
    total = conn.execute("SELECT count(*) FROM notice").fetchone()[0]
    rows = conn.execute("SELECT term, doc FROM temp.v").fetchall()
    conn.close()
    meta = tuple(META_PREFIX.values())  # filter tokens, not words
    bands = {"common": (total * 0.05, total), "mid": (total * 0.001, total * 0.01), "rare": (0, max(20, total / 10000))}
    return {
        name: [
            t
            for t, d in rows
            if lo < d <= hi and len(t) > 3 and (t.isalpha() or name == "rare") and not t.startswith(meta)
        ]
        for name, (lo, hi) in bands.items()
    }


def run_queries(db: Path, n_queries: int, seed: int = 11) -> list[tuple[str, list[float]]]:
    rnd = random.Random(seed)
    engine = open_archive(f"sqlite:///{db}")
    bands = query_words(db)
    classes = {
        "rare word": lambda: rnd.choice(bands["rare"]),
        "mid word": lambda: rnd.choice(bands["mid"]),
        "common word": lambda: rnd.choice(bands["common"]),
        "two words (common+mid)": lambda: f"{rnd.choice(bands['common'])} {rnd.choice(bands['mid'])}",
        "two common words": lambda: f"{rnd.choice(bands['common'])} {rnd.choice(bands['common'])}",
    }
    per_class = max(1, n_queries // (len(classes) * 4))
    # A server in use has the doclists of the archive's frequent terms in memory; a freshly opened
    # file does not. Time the cold first touches separately, then measure warm.
    cold = []
    for w in bands["common"]:
        t0 = time.perf_counter()
        search(engine, w, sort="date", limit=20)
        cold.append((time.perf_counter() - t0) * 1000)
    results = [(f"cold first touch of each frequent term ({len(cold)} terms, untimed below)", cold)]
    gc.freeze()  # as `veille serve` does after start-up (veille/commands/web.py)
    for cname, make in classes.items():
        for filtered in (False, True):
            for sort in ("relevance", "date"):
                times = []
                for _ in range(per_class):
                    q = make()
                    f = Filters()
                    if filtered:
                        start = date(2005 + rnd.randrange(15), 1, 1)
                        f = Filters(
                            labels=[rnd.choice(LABELS[:5])], date_from=start, date_to=start + timedelta(days=1500)
                        )
                    t0 = time.perf_counter()
                    search(engine, q, f, sort=sort, limit=20, facets=False)
                    times.append((time.perf_counter() - t0) * 1000)
                results.append((f"{cname}{' + label + dates' if filtered else ''}, sort={sort}", times))
    return results


def like_baseline(db: Path, words_: list[str]) -> list[float]:
    conn = sqlite3.connect(db)
    times = []
    for w in words_:
        t0 = time.perf_counter()
        conn.execute(
            "SELECT id FROM notice WHERE title_en LIKE ? OR title_fr LIKE ? OR summary_en LIKE ? "
            "OR summary_fr LIKE ? ORDER BY published_at DESC LIMIT 20",
            [f"%{w}%"] * 4,
        ).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return times


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _demo_archive(folder: Path) -> Path:
    import subprocess
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="veille-bench-home-"))
    env = {**os.environ, "VEILLE_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "veille", "demo", "--home", str(folder)], env=env, check=True, capture_output=True
    )
    return folder


def crosslang(demo: Path) -> None:
    from sqlalchemy import text

    from core.config import load_settings
    from nlp.phrase_pairs import rule_units
    from storage.crosslang import archive_units, learn, lexicon
    from storage.search import CANDIDATES

    settings = load_settings(demo / "veille.toml")
    engine = open_archive(settings.database_url)
    t0 = time.perf_counter()
    lex = lexicon(engine, settings, rule_units)  # stored by the demo's run
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    relearned = learn([*archive_units(engine), *rule_units(settings)])
    learn_s = time.perf_counter() - t0
    assert relearned == lex, "the stored lexicon is the one the archive and rules give"
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, title_fr, summary_fr, title_en, summary_en FROM notice")).all()
    only = {
        "en": {r.id for r in rows if (r.title_en or r.summary_en) and not (r.title_fr or r.summary_fr)},
        "fr": {r.id for r in rows if (r.title_fr or r.summary_fr) and not (r.title_en or r.summary_en)},
    }
    pairs = json.loads((ROOT / "bench" / "data" / "crosslang_queries.json").read_text(encoding="utf-8"))["pairs"]

    def ids(q: str, expanded: bool) -> set[int]:
        hits = search(engine, q, limit=CANDIDATES, lexicon=lex if expanded else None).hits
        return {h.notice_id for h in hits}

    totals = {(d, m): [0, 0, 0, 0] for d in ("fr", "en") for m in ("as written", "expanded")}  # hit, target, ok, n
    print(f"demo archive: {len(rows)} notices ({len(only['en'])} English-only, {len(only['fr'])} French-only)")
    print(f"lexicon: {len(lex.fr_en)} French and {len(lex.en_fr)} English stems from {lex.units} aligned units,")
    print(f"read from the archive in {load_s * 1000:.0f} ms; learning it again took {learn_s:.1f} s")
    print(f"{'query (other language)':52} {'targets':>7} {'recall as written':>17} {'expanded':>9} {'results':>9}")
    for p in pairs:
        judged = ids(p["fr"], False) | ids(p["en"], False)
        for lang, other in (("fr", "en"), ("en", "fr")):
            targets = ids(p[other], False) & only[other]
            line = []
            for mode in ("as written", "expanded"):
                got = ids(p[lang], mode == "expanded")
                t = totals[(lang, mode)]
                t[0] += len(got & targets)
                t[1] += len(targets)
                t[2] += len(got & judged)
                t[3] += len(got)
                line.append((len(got & targets), len(got)))
            if targets:
                print(
                    f"{p[lang] + ' (' + p[other] + ')':52.52} {len(targets):>7} {line[0][0]:>17} {line[1][0]:>9}"
                    f" {line[0][1]:>4}->{line[1][1]:<4}"
                )
    print("\ntotals over the 30 pairs (micro: summed over queries)")
    print(f"{'direction':28} {'mode':11} {'recall of the other language':>30} {'precision':>16}")
    for (lang, mode), (hit, target, ok, n) in totals.items():
        direction = "French query, English notices" if lang == "fr" else "English query, French notices"
        recall = f"{hit}/{target} = {hit / target:.2f}" if target else "-"
        precision = f"{ok}/{n} = {ok / n:.2f}" if n else "-"
        print(f"{direction:28} {mode:11} {recall:>30} {precision:>16}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crosslang", action="store_true", help="the cross-language measure on the demo archive")
    ap.add_argument("--demo", type=Path, help="an existing demo archive folder (default: build one)")
    ap.add_argument("--notices", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--db", type=Path, default=ROOT / "bench" / "out" / "search.db")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing archive of the right size")
    args = ap.parse_args()
    if args.crosslang:
        import tempfile

        crosslang(args.demo or _demo_archive(Path(tempfile.mkdtemp(prefix="veille-bench-demo-"))))
        return
    args.db.parent.mkdir(parents=True, exist_ok=True)
    build_s = float("nan") if args.reuse and args.db.exists() else build(args.db, args.notices)
    size = sum(p.stat().st_size for p in args.db.parent.glob(args.db.name + "*"))
    print(f"archive: {args.notices:,} notices, built in {build_s:.1f} s, {size / 2**20:.0f} MiB on disk ({args.db})")
    results = run_queries(args.db, args.queries)
    print(f"{'query class':58} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for name, times in results:
        worst = max(worst, pct(times, 95))
        print(f"{name:58} {len(times):>4} {statistics.median(times):>8.1f} {pct(times, 95):>8.1f} {max(times):>8.1f}")
    sample = [w for w in query_words(args.db)["mid"][:5]]
    like = like_baseline(args.db, sample)
    print(
        f"{'baseline: LIKE scan over titles+summaries (mid words)':58} {len(like):>4} "
        f"{statistics.median(like):>8.1f} {pct(like, 95):>8.1f} {max(like):>8.1f}"
    )
    print(f"worst p95 over all classes: {worst:.1f} ms (target < 50 ms); cpu count {os.cpu_count()}")


if __name__ == "__main__":
    main()
