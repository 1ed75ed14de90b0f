"""The per-label stacker (a variant compared in bench/nlp.py, not in force): what it reads and how it is fitted."""

from __future__ import annotations

from core.config import load_settings
from nlp.dataset import DEV_SET, load_dataset, split
from nlp.rules import active_rules
from nlp.scoring import stack_features, stacked
from nlp.text import Meta, parse_fields
from nlp.train import THRESHOLDS, dataset_examples, fit_stacker, predict_examples


def test_the_stacker_never_selects_a_text_no_rule_reads():
    """However sure the model and however the stacker is fitted, a text in which no rule finds anything scores 0."""
    rules = active_rules(load_settings())
    eager = {"coef": [5.0, 5.0, 5.0, 5.0], "intercept": 10.0}  # says ~1.0 for anything
    generic = ["Council Recommendation on the economic policy of the euro area", "Report on Competition Policy 2024"]
    for title in generic:
        by_label = rules.evaluate(parse_fields([("title", "en", title)], Meta()))
        cats = {lb: 0.99999 for lb in by_label}
        assert all(stacked(eager, stack_features(by_label, cats, lb)) == 0.0 for lb in by_label), title
    health = rules.evaluate(parse_fields([("title", "en", "Vaccination campaigns in schools")], Meta()))
    features = stack_features(health, {lb: 0.99999 for lb in health}, "sante_publique")
    assert features[0] > 0 and features[1] > 0 and stacked(eager, features) > 0.99


def test_the_stacker_learns_from_the_rules_evidence_and_chooses_its_thresholds_on_folds():
    """Fitted on the train split's items with an uninformative model (0.5 for every label), the stacker can only
    learn from the rules: more rule evidence, a higher probability; its thresholds come from the grid, chosen on
    its own out-of-fold probabilities."""
    settings = load_settings()
    rules, labels = active_rules(settings), list(active_rules(settings).labels)
    train, _ = split(load_dataset(DEV_SET))
    examples = dataset_examples(train, labels, rules)
    for e in examples:
        e.raw = e.oof = {lb: 0.5 for lb in labels}
    st = fit_stacker(examples, labels)
    assert set(st) == set(labels)
    for lb, m in st.items():
        assert m["coef"][0] > 0, lb  # the label's rule score
        assert m["threshold"] in THRESHOLDS
    params = {"platt": {}, "gate": None, "calibrated": True, "stacker": st}
    jca = next(e for e in examples if e.item.id == "dev-0002")  # "... First joint clinical assessments begin"
    assert "deai" in predict_examples([jca], labels, params)[0]
