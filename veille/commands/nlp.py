"""``veille classify | train | eval | explain | review | rules check | rules diff``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from core.profiles import load_labels
from veille.commands.base import console, fail, safe, state

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).

rules_app = typer.Typer(help="The analyst rules of the profile.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("classify")(classify_cmd)
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
    app.command("explain")(explain_cmd)
    app.command("review")(review_cmd)
    app.add_typer(rules_app, name="rules")


def classify_cmd(
    all_: bool = typer.Option(
        False, "--all", help="Re-score every notice (default: those whose scores are missing or outdated)."
    ),
) -> None:
    """Score notices per label (rules + model) and store the scores.

    By default, the notices never scored, changed since they were scored, or scored by other rules or
    another model than those in force (the scheduled cycles also catch these up, a few thousand at a time).
    """
    from nlp.classify import classify, stale_ids
    from nlp.rules import RulesError, active_rules

    engine = state.engine()
    try:
        stats = classify(engine, state.settings, None if all_ else stale_ids(engine, state.settings))
    except RulesError as exc:
        fail(str(exc))
    _say_if_refused(active_rules(state.settings))
    sel = ", ".join(f"{k} {v}" for k, v in stats.selected.items())
    console.print(
        f"classified {stats.notices} notices ({stats.rows} scores; rules {stats.rules_version}, "
        f"model {stats.model_version or 'none'}); selected: {sel or '-'}"
    )


def _say_if_refused(rules) -> None:  # nlp.rules.RuleSet
    """One line when the rules file in place was refused and the last good rules were used instead."""

    if rules.refused:
        console.print(
            f"règles refusées, les dernières bonnes règles (version {rules.version}) restent en vigueur "
            f"(rules file refused, last good rules in force): {rules.refused}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def train_cmd(
    extra: Path | None = typer.Option(None, "--extra", help="Another labelled dataset (same schema) to train on."),
    holdout: bool = typer.Option(
        False, "--holdout", help="Keep the shipped set's held-out split out of training (for `veille eval`)."
    ),
) -> None:
    """Train the relevance model on the whole shipped set + analysts' feedback; becomes current."""
    from nlp.dataset import DatasetError, load_dataset
    from nlp.train import train
    from storage.db import ArchiveUnavailable

    try:
        items = load_dataset(extra) if extra else []
        if items:
            _warn_unknown_labels(extra, items, load_labels(state.settings))
        path = train(
            state.settings, items, progress=lambda m: console.print(f"[dim]{escape(m)}[/dim]"), holdout=holdout
        )
    except (DatasetError, ValueError, ArchiveUnavailable) as exc:
        fail(str(exc))
    meta = json.loads((path / "veille_meta.json").read_text(encoding="utf-8"))
    console.print(
        f"model {meta['version']} trained on {len(meta['train_ids'])} examples "
        f"({meta['n_feedback']} from feedback): {path}"
    )
    _print_cv(meta["cv"])


def _warn_unknown_labels(path: Path, items: list, labels: Iterable[str]) -> None:
    """A dataset written for another profile would otherwise be scored as if its labels were all wrong."""
    from nlp.dataset import unknown_labels

    unknown = unknown_labels(items, labels)
    if unknown:
        counts = ", ".join(f"{lb} ({n} item{'s' if n > 1 else ''})" for lb, n in unknown.items())
        console.print(f"warning: {path}: labels not in this profile, ignored: {counts}", markup=False)


def _print_cv(cv: list[dict]) -> None:
    from nlp.evaluate import spread

    for mode in ("rules", "model", "combined"):
        vals = [f[mode]["micro_f1"] for f in cv]
        nm = [f[mode]["near_miss_fp_rate"] for f in cv if f[mode]["near_miss_fp_rate"] is not None]
        console.print(
            f"5-fold CV over train, {mode:8s} micro-F1 {spread(vals)}; near-miss FP {spread(nm) if nm else '-'}"
        )


def eval_cmd(
    dataset: Path | None = typer.Argument(None, help="JSONL dataset (id, title, labels required)."),
    feedback: bool = typer.Option(
        False, "--feedback", help="Agreement with the analysts' verdicts in the archive, by month (no DATASET)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write one JSON line of predictions per item."),
    split_: str | None = typer.Option(
        None, "--split", help="test (the held-out 25 %) | all; default: test for the shipped set, all for any other"
    ),
) -> None:
    """Evaluate rules alone, model alone and combined on a labelled dataset."""
    from nlp.dataset import DatasetError, is_dev_set, load_dataset, profile_dataset, split
    from nlp.evaluate import evaluate, write_predictions
    from nlp.rules import RulesError, active_rules
    from nlp.scoring import load_model

    if feedback:
        if dataset is not None:
            fail("--feedback takes no DATASET: it reads the analysts' verdicts in the archive")
        _print_feedback()
        return
    if dataset is None:
        fail("give a DATASET.jsonl, or --feedback")
    shipped = is_dev_set(dataset, profile_dataset(state.settings, required=False))  # the profile's own set
    if split_ is None:
        split_ = "test" if shipped else "all"
    if split_ not in ("test", "all"):
        fail("--split must be 'test' or 'all'")
    try:
        items = load_dataset(dataset)
        rules = active_rules(state.settings)
    except (DatasetError, RulesError) as exc:
        fail(str(exc))
    _warn_unknown_labels(dataset, items, rules.labels)
    if split_ == "test":
        items = split(items)[1]
    if not items:
        fail(f"{dataset}: no items in split {split_!r}")
    model = load_model(state.settings)
    ev = evaluate(items, rules, model)
    console.print(
        f"{dataset}: {len(items)} item{'s' if len(items) != 1 else ''} (split {split_}); rules {rules.version}; "
        f"model {model.version if model else 'none (rules alone)'}"
    )
    if model is not None and shipped and not model.meta.get("holdout", True):
        console.print(
            f"warning: model {model.version} was trained on the whole shipped set, held-out split included: "
            "these figures are not an honest evaluation (train with `veille train --holdout` for one)",
            markup=False,
        )
    _print_metrics(ev, list(rules.labels))
    if out:
        write_predictions(ev, out, "combined" if model else "rules")
        console.print(f"predictions written to {out}")


def _print_feedback() -> None:
    from nlp.review import feedback_agreement
    from nlp.rules import RulesError
    from nlp.scoring import load_model

    try:
        months = feedback_agreement(state.engine(), state.settings)
    except RulesError as exc:
        fail(str(exc))
    if not months:
        console.print("aucun avis d'analyste dans l'archive (no analyst verdicts yet)", markup=False)
        return
    table = Table(
        "mois", "avis", "accord", "fausses alertes", "manqués", title="accord avec les avis des analystes (by month)"
    )
    for m in months:
        table.add_row(m.month, str(m.verdicts), f"{m.rate:.0%}", str(m.false_alerts), str(m.missed))
    total = sum(m.verdicts for m in months)
    table.add_row("total", str(total), f"{sum(m.agree for m in months) / total:.0%}", "", "")
    console.print(table)
    model = load_model(state.settings)
    if model is not None and model.meta.get("n_feedback"):
        console.print(
            f"note: model {model.version} learnt from {model.meta['n_feedback']} of these verdicts, so its "
            "agreement on them is optimistic; the months after it was trained are the honest ones",
            markup=False,
        )


def review_cmd(
    label: str | None = typer.Option(None, "--label", help="Only this label."),
    n: int = typer.Option(20, "-n", help="How many decisions to list."),
) -> None:
    """Notices to label next: the decisions least certain, or where rules and model disagree, newest first."""
    from nlp.review import review
    from nlp.rules import RulesError

    try:
        items = review(state.engine(), state.settings, label, n)
    except (ValueError, RulesError) as exc:
        fail(str(exc))
    if not items:
        console.print("rien à revoir (nothing to review)", markup=False)
        return
    # One item, two lines (its facts, then its title): readable at 80 columns, and never cut.
    for it in items:
        ms = "-" if it.model_score is None else f"{it.model_score:.2f}"
        rs = "-" if it.rule_score is None else f"{it.rule_score:.2f}"
        mark = " ✓" if it.selected else ""
        facts = f"{it.day or '-'} · notice {it.notice_id} · {it.label} · {it.score:.2f} / {it.threshold:.2f}{mark}"
        console.print(f"{facts} · règles {rs} · modèle {ms} · {', '.join(it.reasons)}", markup=False)
        console.print(f"  {safe(it.title, 160)}", style="dim", highlight=False)  # crawled text: no escapes


def _print_metrics(ev, labels: list[str]) -> None:

    table = Table(title="per-label precision / recall / F1")
    table.add_column("label")
    for mode in ev.results:
        table.add_column(mode, justify="right")
    for lb in labels:
        table.add_row(
            lb,
            *(
                f"{m.per_label[lb].precision:.2f} / {m.per_label[lb].recall:.2f} / {m.per_label[lb].f1:.2f}"
                for m in ev.results.values()
            ),
        )
    rows = [
        ("micro-F1", lambda m: f"{m.micro_f1:.3f}"),
        ("macro-F1", lambda m: f"{m.macro_f1:.3f}"),
        ("relevant-vs-not accuracy", lambda m: f"{m.relevant_accuracy:.3f}"),
        (
            "near-miss FP rate",
            lambda m: "-" if m.near_miss_fp_rate is None else f"{m.near_miss_fp_rate:.3f} (n={m.n_near_miss})",
        ),
        ("false alerts / 100 items", lambda m: f"{m.false_alerts_per_100:.1f}"),
    ]
    for name, fmt in rows:
        table.add_row(name, *(fmt(m) for m in ev.results.values()))
    console.print(table)


def explain_cmd(
    notice: str = typer.Argument(..., metavar="ID", help="The notice's id, CELEX, ELI or procedure reference."),
    ids: bool = typer.Option(False, "--ids", help="Also show the rule ids and weights (for analysts)."),
) -> None:
    """Show, per label, why it was chosen: the rules that fired (their words as written), the model's
    score, and an analyst's verdict."""
    from nlp.classify import explain
    from nlp.rules import RulesError
    from nlp.scoring import MODEL_ALONE
    from storage.identifiers import resolve_notice

    engine = state.engine()
    notice_id = resolve_notice(engine, notice)
    try:
        if notice_id is None:
            raise KeyError(notice)
        data = explain(engine, state.settings, notice_id)
    except KeyError:
        if notice.strip().isdigit():
            fail(f"no notice with id {notice.strip()}")
        fail(f"no notice {notice!r} (an id, a CELEX such as 32025R0117, an ELI or a procedure reference)")
    except RulesError as exc:
        fail(str(exc))
    console.print(
        f"[bold]{escape(data['title'])}[/bold]  "
        f"(rules {data['rules_version']}, model {data['model_version'] or 'none'})"
    )
    for label, d in sorted(data["labels"].items(), key=lambda kv: -kv[1]["score"]):
        mark = "[green]selected[/green]" if d["selected"] else "[dim]not selected[/dim]"
        ms = "-" if d["model_score"] is None else f"{d['model_score']:.2f}"
        if d["model_score"] is not None and not d["model_counted"]:
            why = f"below {MODEL_ALONE:.2f}" if d["model_score"] < MODEL_ALONE else "no rule found anything here"
            ms += f" [dim](not counted: no rule, and {why})[/dim]"
        console.print(
            f"{label}: {d['score']:.2f} (rules {d['rule_score']:.2f}, model {ms}, "
            f"threshold {d['threshold']:.2f}) {mark}"
        )
        _print_why(d, ids)
    _print_stored(data)


def _print_why(d: dict, ids: bool) -> None:
    """The verdict in force, then each rule that fired: its description and the words as written."""
    from nlp.explain import field_name, sentence
    from nlp.verdicts import describe

    if d.get("verdict"):
        own = "sélectionné" if d["score_selected"] else "non sélectionné"
        console.print(f"   verdict : {describe(d['verdict'])} (le score seul : {own})", markup=False, highlight=False)
    for f in d["fired"]:
        weight = f"{f['weight']:+.2f}  " if ids else ""
        where = f" (dans le {field_name(f)})" if f["field"] in ("title", "summary", "body") else ""
        console.print(f"   {weight}{sentence(f, ids=ids)}{where}", markup=False, highlight=False)


def _print_stored(data: dict) -> None:
    """Whether the archive (search, digests) shows the same thing as the live scores above."""

    stored = {lb: d["stored"] for lb, d in data["labels"].items() if d["stored"]}
    if not stored:
        console.print("not scored in the archive yet: the next cycle or `veille classify` scores it", markup=False)
        return
    first = next(iter(stored.values()))
    why = {
        "versions": f"made by rules {first['rules_version']}, model {first['model_version'] or 'none'}",
        "reading": "made before this version's text reading and scoring",
        "changed": "made before the notice last changed",
    }.get(first["outdated"])
    if why:
        shown = ", ".join(sorted(lb for lb, st in stored.items() if st["selected"])) or "no label"
        console.print(
            f"stored scores are outdated ({why}): the archive shows {shown} until the next cycle or "
            "`veille classify` re-scores it",
            markup=False,
        )


@rules_app.command("check")
def rules_check(file: Path | None = typer.Argument(None, help="Rules file (default: the active one).")) -> None:
    """Validate a rules file; prints file:line: what is wrong."""
    from nlp.rules import RulesError, load_rules, rules_path

    path = file or rules_path(state.settings)
    try:
        rs = load_rules(path, set(load_labels(state.settings)))
    except RulesError as exc:
        fail(str(exc))
    console.print(f"{path}: ok, {len(rs.rules)} rules for {len(rs.labels)} labels, version {rs.version}")


@rules_app.command("words")
def rules_words(
    phrase: str = typer.Argument(..., help="A phrase as it would be written in the rules file."),
    lang: str = typer.Option("any", "--lang", help="en, fr or any (both), as the key it would go under."),
    limit: int = typer.Option(2000, "--limit", help="Newest notices read for their words."),
) -> None:
    """Which words of the archive PHRASE catches: phrases match stems, so check a new one before adding it."""
    from rich.table import Table

    from nlp.phrase_words import phrase_words

    try:
        res = phrase_words(state.engine(), state.settings, phrase, lang, limit)
    except ValueError as exc:
        fail(str(exc))
    stems = "; ".join(f"{lg}: {' '.join(st)}" for lg, st in res.stems)
    head = f"{phrase!r} is matched as the stems ({stems}): {res.notices} notices hold them (any field)"
    console.print(head, markup=False)
    if not res.forms:
        console.print("no notice has them in a field of that language")
        return
    table = Table("words as written", "notices", "e.g.", title=f"in the newest {res.read} of them")
    for form, n in res.forms.most_common():
        table.add_row(form, str(n), ", ".join(map(str, res.examples[form])))
    console.print(table)


@rules_app.command("save")
def rules_save(
    new_rules: Path = typer.Argument(..., help="Rules file to put in force."),
    by: str | None = typer.Option(None, "--by", help="Who saves it, for the history (default: the login name)."),
) -> None:
    """Put NEW_RULES in force (after `veille rules diff`), keeping the previous version in the history."""
    from nlp.rules import RulesError, read_rules, save_rules

    try:
        text = read_rules(new_rules)
    except RulesError as exc:
        fail(str(exc))
    try:  # a failure to write names the history or the rules file, never NEW_RULES
        version = save_rules(state.settings, text, by, filename=str(new_rules))
    except RulesError as exc:
        fail(str(exc))
    console.print(
        f"rules version {version} in force; the previous one is in the history. The cycles re-score the "
        "archive with it, newest notices first, or now: veille classify",
        markup=False,
    )


@rules_app.command("diff")
def rules_diff(
    new_rules: Path = typer.Argument(..., help="Candidate rules file."),
    show: int = typer.Option(20, "--show", help="Notice ids to list per label and direction."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Backtest: which notices would gain or lose each label with NEW_RULES (nothing is saved)."""
    from nlp.backtest import backtest
    from nlp.rules import RulesError, read_rules

    try:
        text = read_rules(new_rules)
    except RulesError as exc:
        fail(str(exc))
    try:
        res = backtest(state.engine(), state.settings, text, str(new_rules))
    except RulesError as exc:
        fail(str(exc))
    if as_json:
        console.print_json(json.dumps(res.to_dict()))
        return
    console.print(
        f"rules {res.current_version} -> {res.candidate_version}: {res.notices} notices, "
        f"{res.rescored} re-scored in {res.seconds:.2f} s"
    )
    if res.note:
        console.print(f"note: {res.note}", markup=False)
    for lb, d in res.labels.items():
        g, lo = d.counts
        line = f"{lb}: +{g} -{lo}"
        if g:
            line += f"  gained {d.gained[:show]}"
        if lo:
            line += f"  lost {d.lost[:show]}"
        console.print(line)
