"""The fields of a notice the classifier reads, apart from nlp.text (which imports spaCy): reading a rules
file's schema (nlp.rules_load) needs only their names (``veille review`` reads thresholds without spaCy)."""

FIELDS = ("title", "summary", "body", "subject")  # subject: the act's EuroVoc descriptors (index = token cache code)
