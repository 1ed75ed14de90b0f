"""On-disk cache of normalised token arrays, keyed by notice id + content hash.

Classification writes each notice's stems here once; a rule backtest then rebuilds spaCy docs from
these arrays (no re-tokenising, no re-stemming) and finds the notices a changed phrase can touch
with a vectorised scan over one ``uint32`` array. Layout under ``$VEILLE_HOME/cache/nlp/v<TEXT_VERSION>/``:
``vocab.txt`` (one stem per line, id = line number, append-only) and ``seg-NNNNNN.npz`` segments;
a later segment wins for the same notice id, and segments are merged when there are too many.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import Settings
from nlp.fields import FIELDS
from nlp.text import TEXT_VERSION, FieldText, Meta, Parsed

LANG_CODES = ("en", "fr")
MAX_SEGMENTS = 12
FLUSH_EVERY = 20_000  # notices held before a segment is written


@dataclass
class TokenArchive:
    """Every cached notice, as flat arrays."""

    vocab: list[str]
    index: dict[str, int]
    nids: np.ndarray  # int64, one per notice
    hashes: np.ndarray  # str
    fstart: np.ndarray  # int64, n+1: a notice's fields are fstart[i]:fstart[i+1]
    fname: np.ndarray  # uint8 code into FIELDS
    flang: np.ndarray  # uint8 code into LANG_CODES
    tstart: np.ndarray  # int64, nf+1: a field's tokens are tstart[j]:tstart[j+1]
    tokens: np.ndarray  # uint32 stem ids
    metas: list[str]  # JSON per notice

    @classmethod
    def empty(cls, vocab: list[str] | None = None, index: dict[str, int] | None = None) -> TokenArchive:
        none = np.empty(0, np.uint8)
        zero = np.zeros(1, np.int64)
        return cls(
            [] if vocab is None else vocab,  # the cache's own (empty) lists, shared as load() shares them
            {} if index is None else index,
            np.empty(0, np.int64),
            np.empty(0, str),
            zero,
            none,
            none,
            zero,
            np.empty(0, np.uint32),
            [],
        )

    def __len__(self) -> int:
        return len(self.nids)

    def parsed(self, i: int) -> Parsed:
        fields = []
        for j in range(self.fstart[i], self.fstart[i + 1]):
            stems = [self.vocab[t] for t in self.tokens[self.tstart[j] : self.tstart[j + 1]].tolist()]
            fields.append(FieldText(FIELDS[self.fname[j]], LANG_CODES[self.flang[j]], stems, stems))
        m = json.loads(self.metas[i])
        return Parsed(fields, Meta(m[0], m[1], m[2], m[3], frozenset(m[4])))

    def meta(self, i: int) -> Meta:
        m = json.loads(self.metas[i])
        return Meta(m[0], m[1], m[2], m[3], frozenset(m[4]))

    def _notice_of(self, pos: np.ndarray) -> np.ndarray:
        field_idx = np.searchsorted(self.tstart, pos, side="right") - 1
        return np.unique(np.searchsorted(self.fstart, field_idx, side="right") - 1)

    def with_sequence(self, stems: list[str]) -> np.ndarray:
        """Indices of notices where ``stems`` occur consecutively (what a phrase needs to match)."""
        ids = [self.index.get(s) for s in stems]
        if not ids or None in ids:
            return np.empty(0, dtype=np.int64)
        pos = np.flatnonzero(self.tokens == ids[0])
        for k, tid in enumerate(ids[1:], 1):
            pos = pos[pos + k < len(self.tokens)]
            pos = pos[self.tokens[pos + k] == tid]
        return self._notice_of(pos)

    def containing(self, stem: str) -> np.ndarray:
        """Indices of notices whose text contains ``stem`` (sorted, unique)."""
        tid = self.index.get(stem)
        if tid is None:
            return np.empty(0, dtype=np.int64)
        pos = np.flatnonzero(self.tokens == tid)
        field_idx = np.searchsorted(self.tstart, pos, side="right") - 1
        return np.unique(np.searchsorted(self.fstart, field_idx, side="right") - 1)


class TokenCache:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vocab: list[str] = []
        self.index: dict[str, int] = {}
        self._vocab_saved = 0
        vf = self.dir / "vocab.txt"
        if vf.exists():
            self.vocab = vf.read_text(encoding="utf-8").split("\n")[:-1]
            self.index = {s: i for i, s in enumerate(self.vocab)}
            self._vocab_saved = len(self.vocab)
        self._known: dict[int, str] | None = None
        self._pending: list[tuple[int, str, Parsed]] = []

    @classmethod
    def for_settings(cls, settings: Settings) -> TokenCache:
        """The cache of the current text normalisation (``TEXT_VERSION``); earlier ones are removed."""
        root = settings.home / "cache" / "nlp"
        current = root / f"v{TEXT_VERSION}"
        if root.is_dir():
            for old in root.iterdir():
                if old != current:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
        return cls(current)

    def _segments(self) -> list[Path]:
        return sorted(self.dir.glob("seg-*.npz"))

    def known(self) -> dict[int, str]:
        """notice id -> content hash of what is cached."""
        if self._known is None:
            self._known = {}
            for seg in self._segments():
                with np.load(seg) as z:
                    self._known.update(zip(z["nids"].tolist(), z["hashes"].tolist(), strict=True))
        return self._known

    def add_many(self, entries: list[tuple[int, str, Parsed]]) -> None:
        known = self.known()
        for nid, h, p in entries:
            if known.get(nid) != h:  # only the stems are cached: drop the surface words now
                lean = [FieldText(f.name, f.lang, [], f.stems) for f in p.fields]
                self._pending.append((nid, h, Parsed(lean, p.meta)))
        if len(self._pending) >= FLUSH_EVERY:  # bounded memory on a cold cache of a big archive
            self.flush()

    def _ids(self, stems: list[str]) -> map:
        for stem in [s for s in dict.fromkeys(stems) if s not in self.index]:  # in order: a reproducible vocab
            self.index[stem] = len(self.vocab)
            self.vocab.append(stem)
        return map(self.index.__getitem__, stems)  # C-level lookups: this loop runs once per token

    def flush(self) -> None:
        if not self._pending:
            return
        nids, hashes, fstart, fname, flang, tstart, tokens, metas = [], [], [0], [], [], [0], [], []
        for nid, h, p in self._pending:
            nids.append(nid)
            hashes.append(h)
            for f in p.fields:
                fname.append(FIELDS.index(f.name))
                flang.append(LANG_CODES.index(f.lang))
                tokens.extend(self._ids(f.stems))
                tstart.append(len(tokens))
            fstart.append(len(fname))
            m = p.meta
            metas.append(json.dumps([m.source, m.kind, m.doc_type, m.celex, sorted(m.acts)]))
        with (self.dir / "vocab.txt").open("a", encoding="utf-8") as fh:  # vocab first: segments refer to it
            fh.write("".join(s + "\n" for s in self.vocab[self._vocab_saved :]))
        self._vocab_saved = len(self.vocab)
        n = len(self._segments())
        arrays = {
            "nids": np.array(nids, dtype=np.int64),
            "hashes": np.array(hashes, dtype=str),
            "fstart": np.array(fstart, dtype=np.int64),
            "fname": np.array(fname, dtype=np.uint8),
            "flang": np.array(flang, dtype=np.uint8),
            "tstart": np.array(tstart, dtype=np.int64),
            "tokens": np.array(tokens, dtype=np.uint32),
            "metas": np.array(metas, dtype=str),
        }
        self._save(arrays, f"seg-{n:06d}")
        known = self.known()
        known.update(zip(nids, hashes, strict=True))
        self._pending = []
        if n + 1 > MAX_SEGMENTS:
            self.compact()

    def _save(self, arrays: dict[str, np.ndarray], name: str) -> None:
        tmp = self.dir / f"{name}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(self.dir / f"{name}.npz")

    def load(self) -> TokenArchive:
        parts = []
        for seg in self._segments():
            with np.load(seg) as z:
                parts.append({k: z[k] for k in z.files})
        if not parts:
            return TokenArchive.empty(self.vocab, self.index)
        # The last segment that holds a notice wins.
        last: dict[int, tuple[int, int]] = {}
        for si, p in enumerate(parts):
            for row, nid in enumerate(p["nids"].tolist()):
                last[nid] = (si, row)
        merged = _merge(parts, last)
        return TokenArchive(self.vocab, self.index, **merged)

    def compact(self) -> None:
        arch = self.load()
        old = self._segments()
        arrays = {k: getattr(arch, k) for k in ("nids", "hashes", "fstart", "fname", "flang", "tstart", "tokens")}
        arrays["metas"] = np.array(arch.metas, dtype=str)
        self._save(arrays, "seg-000000-c")
        for seg in old:
            seg.unlink()
        (self.dir / "seg-000000-c.npz").rename(self.dir / "seg-000000.npz")


def _merge(parts: list[dict[str, np.ndarray]], last: dict[int, tuple[int, int]]) -> dict:
    out = {k: [] for k in ("nids", "hashes", "fname", "flang", "tokens", "metas")}
    flen, tlen = [], []
    for si, p in enumerate(parts):
        keep = np.array([last[nid] == (si, row) for row, nid in enumerate(p["nids"].tolist())], dtype=bool)
        if not keep.any():
            continue
        nf = np.diff(p["fstart"])  # fields per notice
        field_keep = np.repeat(keep, nf)
        nt = np.diff(p["tstart"])  # tokens per field
        out["nids"].append(p["nids"][keep])
        out["hashes"].append(p["hashes"][keep])
        out["metas"].append(p["metas"][keep])
        out["fname"].append(p["fname"][field_keep])
        out["flang"].append(p["flang"][field_keep])
        out["tokens"].append(p["tokens"][np.repeat(field_keep, nt)])
        flen.append(nf[keep])
        tlen.append(nt[field_keep])
    cat = {k: np.concatenate(v) for k, v in out.items()}
    fstart = np.concatenate([[0], np.cumsum(np.concatenate(flen))]).astype(np.int64)
    tstart = np.concatenate([[0], np.cumsum(np.concatenate(tlen))]).astype(np.int64)
    return {
        "nids": cat["nids"],
        "hashes": cat["hashes"],
        "fstart": fstart,
        "fname": cat["fname"],
        "flang": cat["flang"],
        "tstart": tstart,
        "tokens": cat["tokens"],
        "metas": cat["metas"].tolist(),
    }
