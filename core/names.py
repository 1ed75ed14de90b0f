"""Readable names for the codes the sources and the pipeline store (notice kinds, document types,
statuses), declared once here (a source kind's with the kind, in crawlers/kinds/). The names are
English message ids marked for the web's gettext catalogues (``core/locale``, French by default); a
code not listed shows as itself.

Document types are the Publications Office's resource-type codes (Cellar, EUR-Lex), the EP's
procedure types and the registers' own (``funding:<programme>`` shows as a funding call).
"""

from __future__ import annotations

from core.celex import parse_celex


def N_(message: str) -> str:
    return message


NOTICE_KINDS = {
    "act": N_("Adopted act"),
    "corrigendum": N_("Corrigendum"),
    "proposal": N_("Proposal"),
    "procedure": N_("Legislative procedure"),
    "news": N_("News"),
    "guidance": N_("Guidance"),
    "consultation": N_("Public consultation"),
    "draft_act": N_("Draft act"),
    "funding_call": N_("Funding call"),
    "other": N_("Other"),
}

DOC_TYPES = {
    "REG": N_("Regulation"),
    "REG_IMPL": N_("Implementing regulation"),
    "REG_DEL": N_("Delegated regulation"),
    "DIR": N_("Directive"),
    "DIR_IMPL": N_("Implementing directive"),
    "DIR_DEL": N_("Delegated directive"),
    "DEC": N_("Decision"),
    "DEC_IMPL": N_("Implementing decision"),
    "DEC_DEL": N_("Delegated decision"),
    "RECO": N_("Recommendation"),
    "PROP_REG": N_("Proposal for a regulation"),
    "PROP_DIR": N_("Proposal for a directive"),
    "PROP_DEC": N_("Proposal for a decision"),
    "CORRIGENDUM": N_("Corrigendum"),
    "COM": N_("Commission communication"),
    "SWD": N_("Staff working document"),
    "DRAFT_IMPL": N_("Draft implementing act"),
    "COD": N_("Ordinary legislative procedure"),
    "CNS": N_("Consultation procedure"),
    "NLE": N_("Non-legislative enactment"),
    "INI": N_("Own-initiative report"),
    "APP": N_("Consent procedure"),
    "RSP": N_("Resolution on a topical subject"),
    "DEA": N_("Delegated act procedure"),
    "RPS": N_("Implementing measure (regulatory procedure with scrutiny)"),
    "REG_DEL_DRAFT": N_("Draft delegated regulation"),
    "REG_IMPL_DRAFT": N_("Draft implementing regulation"),
    "CALL_FOR_EVIDENCE": N_("Call for evidence"),
    "OPC": N_("Public consultation"),
    "press_release": N_("Press release"),
    "funding": N_("Funding call"),
}

STATUSES = {
    "running": N_("running"),
    "ok": N_("ok"),
    "failed": N_("failed"),
    "pending": N_("pending"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "uncertain": N_("uncertain"),
}


# A CELEX number's sector and descriptor say what the act is when the source gave no type (EUR-Lex RSS).
CELEX_TYPES = {
    ("3", "R"): N_("Regulation"),
    ("3", "L"): N_("Directive"),
    ("3", "D"): N_("Decision"),
    ("3", "H"): N_("Recommendation"),
    ("5", "PC"): N_("Commission proposal"),
    ("5", "DC"): N_("Commission communication"),
    ("5", "SC"): N_("Staff working document"),
}


def doc_type_name(code: str | None) -> str | None:
    """The English message id naming a document type code (``funding:EU4H`` -> Funding call), else None."""
    if not code:
        return None
    return DOC_TYPES.get(code) or DOC_TYPES.get(code.split(":", 1)[0])


def celex_type_name(celex: str | None) -> str | None:
    """What a CELEX number says the document is (``32025R0117`` -> Regulation), else None."""
    parsed = parse_celex(celex)
    return CELEX_TYPES.get((parsed.sector, parsed.descriptor)) if parsed else None


VERSION_REASONS = {
    "new": N_("new"),
    "changed": N_("changed"),
    "deadline moved": N_("deadline moved"),
}

PURPOSES = {
    "alert": N_("alert"),
    "digest": N_("digest"),
}

# A notice's fields as the version history names them (NoticeVersion.snapshot keys).
FIELDS = {
    "title_fr": N_("Title (FR)"),
    "title_en": N_("Title (EN)"),
    "summary_fr": N_("Summary (FR)"),
    "summary_en": N_("Summary (EN)"),
    "body": N_("Text"),
    "celex": "CELEX",
    "corrigendum": N_("Corrigendum"),
    "deadline": N_("Deadline"),
    "doc_type": N_("Document type"),
    "document_date": N_("Document date"),
    "eurovoc": "EuroVoc",
    "kind": N_("Kind"),
    "legal_basis": N_("Legal basis"),
    "opens": N_("Opens"),
    "published_at": N_("Published"),
    "related_acts": N_("Related acts"),
    "procedure": N_("Procedure"),
    "url": N_("Page"),
}

# A source's health (storage.health.SourceHealth.state); its reasons stay in French (the CLI's too).
HEALTH_STATES = {
    "ok": N_("ok"),
    "quiet": N_("quiet"),
    "degraded": N_("degraded"),
    "failed": N_("failing"),
    "never": N_("never collected"),
}
