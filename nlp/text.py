"""Turning a notice (or a dataset item) into normalised token streams, one per field.

Every word is lower-cased, stemmed with Snowball in the field's language and stripped of accents
(``storage.textnorm.stem``), so ``dispositifs médicaux`` and ``dispositif medical`` are the same
tokens and a rule phrase catches its inflections. The spaCy ``Doc`` the matchers see is built from
these stems (``ORTH`` = stem); the surface words are kept beside it for explanations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import compress

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from core.lang import WORD_RE, guess_lang, hints, plainly_other
from storage.textnorm import stem, strip_accents

CAPS_RE = re.compile(r"[A-ZÀ-ÖØ-Þ]{2}")
TEXT_VERSION = 3  # bump when a change here changes the stems a notice gets: the token cache starts afresh
BODY_CHARS = 2000  # classify title + summary + the start of the body
FR_LETTERS = re.compile(r"[àâçéèêëîïôùûüÿœ]", re.IGNORECASE)


@cache
def blank_nlp() -> Language:
    """One blank multi-language pipeline per process (the French one takes 4 s to build)."""
    return spacy.blank("xx")


def _acronym(word: str) -> bool:
    return 2 <= len(word) <= 6 and word.isupper() and word.isalpha()


_STEM_CACHE: dict[str, dict[str, str]] = {"en": {}, "fr": {}}
_ACRONYMS: dict[str, str] = {}  # every acronym seen (each word passes through _stem once) -> accent-free form
SEP = "xxsep"  # between fields in a notice's doc: no phrase can match across two fields


def _stem(word: str, lang: str) -> str:
    cache = _STEM_CACHE[lang]
    s = cache.get(word)
    if s is None:
        s = cache[word] = stem(word.lower(), lang)
        if _acronym(word):
            _ACRONYMS[word] = strip_accents(word)
    return s


def normalise(text: str, lang: str) -> tuple[list[str], list[str]]:
    """(surface words, stems) of ``text`` in ``lang`` ("fr" or "en").

    Acronyms keep their case (``WHO`` is not ``who``, ``REACH`` is not ``reaches``) unless the whole
    text is in capitals, as some official titles are.
    """
    surface = WORD_RE.findall(text)
    stems = list(map(_STEM_CACHE[lang].get, surface))  # one C-level dict lookup per known word
    if None in stems:
        stems = [s if s is not None else _stem(w, lang) for w, s in zip(surface, stems, strict=True)]
    if CAPS_RE.search(text):
        caps = list(compress(range(len(surface)), map(_ACRONYMS.__contains__, surface)))  # C-level scan
        if caps and (len(caps) * 2 < len(surface) or len(surface) <= 2):
            for i in caps:
                stems[i] = _ACRONYMS[surface[i]]
    return surface, stems


@dataclass
class FieldText:
    name: str  # title | summary | body
    lang: str
    surface: list[str]
    stems: list[str]
    text: str = ""  # the field as written (empty when rebuilt from cached stems)
    _spans: list[tuple[int, int]] | None = field(default=None, repr=False, compare=False)

    def written(self, start: int, end: int) -> str:
        """Tokens ``start:end`` as written in the notice, punctuation and case included (``d'origine``,
        ``2017/745``), for explanations; found only for the few spans that fired."""
        if not self.text:
            return " ".join(self.surface[start:end])
        if self._spans is None:
            self._spans = [m.span() for m in WORD_RE.finditer(self.text)]
        return self.text[self._spans[start][0] : self._spans[end - 1][1]]


@dataclass
class Meta:
    source: str = ""
    kind: str = ""
    doc_type: str = ""
    celex: str = ""
    acts: frozenset[str] = frozenset()  # legal basis + related acts (base CELEX)


@dataclass
class Parsed:
    fields: list[FieldText]
    meta: Meta = field(default_factory=Meta)
    _doc: Doc | None = field(default=None, repr=False, compare=False)

    def words(self) -> list[str]:
        """Every field's stems, in order, with a separator between fields."""
        out: list[str] = []
        for f in self.fields:
            if out:
                out.append(SEP)
            out.extend(f.stems)
        return out

    def model_text(self) -> str:
        """What the trained model reads: ``words()``, space-separated (``make_doc(text.split())``)."""
        return " ".join(self.words())

    def doc(self) -> Doc:
        """One spaCy doc for the whole notice (built once, shared by the matchers and the model)."""
        if self._doc is None:
            self._doc = make_doc(self.words())
        return self._doc

    def field_starts(self) -> list[int]:
        starts, pos = [], 0
        for f in self.fields:
            starts.append(pos)
            pos += len(f.stems) + 1
        return starts


def _lang(value: str | None, text: str) -> str:
    """The declared language, unless the text is plainly in the other one: a source may file a French
    text as English, and its phrases must still be looked for in French."""
    if value not in ("fr", "en"):
        return guess_lang(text)
    return plainly_other(value, text) or value


def parse_fields(parts: list[tuple[str, str | None, str | None]], meta: Meta) -> Parsed:
    """``parts``: (field name, language or None, text); empty texts are skipped.

    Subject descriptors are kept in the languages of the notice's other fields when it has any: Cellar gives
    them in both, and a descriptor in a language no other field has would run that language's phrase
    matcher over the whole notice for one or two words (a quarter of classification time)."""
    fields = []
    for name, lang, text in parts:
        if text and name != "subject":
            text = text[:BODY_CHARS] if name == "body" else text
            lg = _lang(lang, text)
            surface, stems = normalise(text, lg)
            if stems:
                fields.append(FieldText(name, lg, surface, stems, text))
    langs = {f.lang for f in fields}
    for name, lang, text in parts:
        if text and name == "subject" and (not langs or lang in langs):
            surface, stems = _descriptor(text, lang)  # a controlled vocabulary: each descriptor read once
            if stems:
                fields.append(FieldText(name, lang, surface, stems, text))
    return Parsed(fields, meta)


def subject_parts(descriptors: list[str] | tuple[str, ...]) -> list[tuple[str, str | None, str]]:
    """EuroVoc descriptors as ``subject`` fields, one per language. Cellar gives them in English and French
    in one list, and a descriptor is too short for function words: one with a French letter or a French
    function word is French, one with an English function word English, any other is looked at in both
    (a controlled vocabulary: "pharmaceutical product" reads the same either way)."""
    out: list[tuple[str, str | None, str]] = []
    for d in dict.fromkeys(str(d).strip() for d in descriptors):  # one field each: no phrase runs across two
        if d:
            out += [("subject", lg, d) for lg in _descriptor_langs(d)]
    return out


@lru_cache(maxsize=50_000)
def _descriptor_langs(d: str) -> tuple[str, ...]:
    fr, en = hints(d)
    return ("fr",) if fr > en or FR_LETTERS.search(d) else ("en",) if en > fr else ("en", "fr")


@lru_cache(maxsize=50_000)
def _descriptor(d: str, lang: str) -> tuple[list[str], list[str]]:
    return normalise(d, lang)  # shared lists: FieldText's are never modified


def parse_item(item) -> Parsed:  # nlp.dataset.Item
    lang = item.lang or guess_lang(item.title + " " + item.summary)
    acts = frozenset(a.strip().upper() for a in (*item.legal_basis, *item.related_acts))
    meta = Meta(item.source or "", item.kind or "", item.doc_type or "", (item.celex or "").upper(), acts)
    parts = [("title", lang, item.title), ("summary", lang, item.summary), ("body", None, item.body)]
    return parse_fields(parts + subject_parts(item.eurovoc), meta)


def parse_notice(n) -> Parsed:  # storage.models.Notice (or a row with its columns)
    acts = frozenset(a.strip().upper() for a in (*(n.legal_basis or []), *(n.related_acts or [])))
    meta = Meta(n.source or "", n.kind or "", n.doc_type or "", (n.celex or "").upper(), acts)
    parts = [
        ("title", "fr", n.title_fr),
        ("title", "en", n.title_en),
        ("summary", "fr", n.summary_fr),
        ("summary", "en", n.summary_en),
        ("body", n.lang, n.body),
    ]
    return parse_fields(parts + subject_parts(n.eurovoc or []), meta)


_ORTH: dict[str, int] = {}  # stem -> its hash in the blank pipeline's StringStore


def make_doc(stems: list[str]) -> Doc:
    # One token per stem, never the tokenizer: its rules split a stem such as "500mg" or "5g" in two,
    # which shifted every later token off the field offsets (wrong words in explanations, a cue of the
    # summary counted in the title). The words are given as their hashes: spaCy then skips hashing each
    # string, and a doc is built 5 times faster (a quarter of classification time went there).
    vocab = blank_nlp().vocab
    ids = list(map(_ORTH.get, stems))
    if None in ids:
        add = vocab.strings.add
        ids = [i if i is not None else _ORTH.setdefault(w, add(w)) for w, i in zip(stems, ids, strict=True)]
    return Doc(vocab, words=ids)
