"""``veille classify | train | eval | explain | review | rules check | rules diff``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from veille.commands.base import console, fail, safe, state

# Stage modules are imported inside each command, not here: start-up time (every `veille` call imports
# this module; a command loads only the stages it runs).

rules_app = typer.Typer(help="Les règles d'analyste du profil.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("classify")(classify_cmd)
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
    app.command("explain")(explain_cmd)
    app.command("review")(review_cmd)
    app.add_typer(rules_app, name="rules")


def classify_cmd(
    all_: bool = typer.Option(
        False, "--all", help="Reclasser chaque notice (défaut : celles dont les scores manquent ou sont périmés)."
    ),
) -> None:
    """Scorer les notices par thématique (règles + modèle) et enregistrer les scores.

    Par défaut, les notices jamais scorées, modifiées depuis, ou scorées par d'autres règles ou un autre
    modèle que ceux en vigueur (les cycles planifiés les rattrapent aussi, quelques milliers à la fois).
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
        f"{stats.notices} notice(s) classée(s) ({stats.rows} scores ; règles {stats.rules_version}, "
        f"modèle {stats.model_version or 'aucun'}) ; sélectionnées : {sel or '-'}"
    )


def _say_if_refused(rules) -> None:  # nlp.rules.RuleSet
    """One line when the rules file in place was refused and the last good rules were used instead."""

    if rules.refused:
        console.print(
            f"règles refusées, les dernières bonnes règles (version {rules.version}) restent en vigueur : "
            f"{rules.refused}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def train_cmd(
    extra: Path | None = typer.Option(None, "--extra", help="Un autre jeu annoté (même schéma) pour l'entraînement."),
    holdout: bool = typer.Option(
        False, "--holdout", help="Garder hors de l'entraînement la part réservée du jeu livré (pour `veille eval`)."
    ),
) -> None:
    """Entraîner le modèle de pertinence sur tout le jeu livré + les avis des analystes ; il entre en vigueur."""
    from core.profiles import load_labels
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
        f"modèle {meta['version']} entraîné sur {len(meta['train_ids'])} exemples "
        f"(dont {meta['n_feedback']} avis) : {path}"
    )
    _print_cv(meta["cv"])


def _warn_unknown_labels(path: Path, items: list, labels: Iterable[str]) -> None:
    """A dataset written for another profile would otherwise be scored as if its labels were all wrong."""
    from nlp.dataset import unknown_labels

    unknown = unknown_labels(items, labels)
    if unknown:
        counts = ", ".join(f"{lb} ({n} élément{'s' if n > 1 else ''})" for lb, n in unknown.items())
        console.print(f"attention : {path} : thématiques absentes de ce profil, ignorées : {counts}", markup=False)


def _print_cv(cv: list[dict]) -> None:
    from nlp.evaluate import spread

    for mode in ("rules", "model", "combined"):
        vals = [f[mode]["micro_f1"] for f in cv]
        nm = [f[mode]["near_miss_fp_rate"] for f in cv if f[mode]["near_miss_fp_rate"] is not None]
        console.print(
            f"validation croisée (5 plis), {mode:8s} micro-F1 {spread(vals)} ; faux positifs proches "
            f"{spread(nm) if nm else '-'}"
        )


def eval_cmd(
    dataset: Path | None = typer.Argument(None, metavar="JEU", help="Jeu annoté JSONL (id, title, labels requis)."),
    feedback: bool = typer.Option(
        False, "--feedback", help="Accord avec les avis des analystes dans l'archive, par mois (sans JEU)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Écrire une ligne JSON de prédictions par élément."),
    split_: str | None = typer.Option(
        None, "--split", help="test (les 25 % réservés) | all ; défaut : test pour le jeu livré, all pour un autre"
    ),
) -> None:
    """Évaluer règles seules, modèle seul et combinés sur un jeu annoté."""
    from nlp.dataset import DatasetError, is_dev_set, load_dataset, profile_dataset, split
    from nlp.evaluate import evaluate, write_predictions
    from nlp.rules import RulesError, active_rules
    from nlp.scoring import load_model

    if feedback:
        if dataset is not None:
            fail("--feedback ne prend pas de JEU : il lit les avis des analystes dans l'archive")
        _print_feedback()
        return
    if dataset is None:
        fail("donnez un JEU.jsonl, ou --feedback")
    shipped = is_dev_set(dataset, profile_dataset(state.settings, required=False))  # the profile's own set
    if split_ is None:
        split_ = "test" if shipped else "all"
    if split_ not in ("test", "all"):
        fail("--split vaut 'test' ou 'all'")
    try:
        items = load_dataset(dataset)
        rules = active_rules(state.settings)
    except (DatasetError, RulesError) as exc:
        fail(str(exc))
    _warn_unknown_labels(dataset, items, rules.labels)
    if split_ == "test":
        items = split(items)[1]
    if not items:
        fail(f"{dataset} : aucun élément dans la part {split_!r}")
    model = load_model(state.settings)
    ev = evaluate(items, rules, model)
    console.print(
        f"{dataset} : {len(items)} élément{'s' if len(items) > 1 else ''} (part {split_}) ; règles {rules.version} ; "
        f"modèle {model.version if model else 'aucun (règles seules)'}"
    )
    if model is not None and shipped and not model.meta.get("holdout", True):
        console.print(
            f"attention : le modèle {model.version} a appris sur tout le jeu livré, part réservée comprise : "
            "ces chiffres ne sont pas une évaluation honnête (`veille train --holdout` en donne une)",
            markup=False,
        )
    _print_metrics(ev, list(rules.labels))
    if out:
        write_predictions(ev, out, "combined" if model else "rules")
        console.print(f"prédictions écrites dans {out}")


def _print_feedback() -> None:
    from nlp.review import feedback_agreement
    from nlp.rules import RulesError
    from nlp.scoring import load_model

    try:
        months = feedback_agreement(state.engine(), state.settings)
    except RulesError as exc:
        fail(str(exc))
    if not months:
        console.print("aucun avis d'analyste dans l'archive", markup=False)
        return
    table = Table(
        "mois", "avis", "accord", "fausses alertes", "manqués", title="accord avec les avis des analystes, par mois"
    )
    for m in months:
        table.add_row(m.month, str(m.verdicts), f"{m.rate:.0%}", str(m.false_alerts), str(m.missed))
    total = sum(m.verdicts for m in months)
    table.add_row("total", str(total), f"{sum(m.agree for m in months) / total:.0%}", "", "")
    console.print(table)
    model = load_model(state.settings)
    if model is not None and model.meta.get("n_feedback"):
        console.print(
            f"note : le modèle {model.version} a appris de {model.meta['n_feedback']} de ces avis, son accord avec "
            "eux est donc optimiste ; les mois après son entraînement sont les mesures honnêtes",
            markup=False,
        )


def review_cmd(
    label: str | None = typer.Option(None, "--label", help="Seulement cette thématique."),
    n: int = typer.Option(20, "-n", help="Nombre de décisions listées."),
) -> None:
    """Notices à juger ensuite : décisions les moins sûres, ou où règles et modèle divergent, récentes d'abord."""
    from nlp.review import review
    from nlp.rules_load import RulesError

    try:  # the quick way (state.archive): no SQLAlchemy, no spaCy (docs/decisions.md, *Two ways to read*)
        items = review(state.archive(), state.settings, label, n)
    except (ValueError, RulesError) as exc:
        fail(str(exc))
    if not items:
        console.print("rien à revoir", markup=False)
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

    table = Table(title="précision / rappel / F1 par thématique")
    table.add_column("thématique")
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
        ("exactitude pertinent / non pertinent", lambda m: f"{m.relevant_accuracy:.3f}"),
        (
            "taux de faux positifs proches",
            lambda m: "-" if m.near_miss_fp_rate is None else f"{m.near_miss_fp_rate:.3f} (n={m.n_near_miss})",
        ),
        ("fausses alertes / 100 éléments", lambda m: f"{m.false_alerts_per_100:.1f}"),
    ]
    for name, fmt in rows:
        table.add_row(name, *(fmt(m) for m in ev.results.values()))
    console.print(table)


def explain_cmd(
    notice: str = typer.Argument(..., metavar="ID", help="L'id de la notice, son CELEX, son ELI ou sa procédure."),
    ids: bool = typer.Option(False, "--ids", help="Montrer aussi les ids et poids des règles (analystes)."),
) -> None:
    """Pourquoi chaque thématique a été retenue : règles déclenchées, score du modèle, avis d'un analyste.

    Les règles avec leurs mots tels qu'écrits dans la notice."""
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
            fail(f"aucune notice d'id {notice.strip()}")
        fail(f"aucune notice {notice!r} (un id, un CELEX comme 32025R0117, un ELI ou une référence de procédure)")
    except RulesError as exc:
        fail(str(exc))
    console.print(
        f"[bold]{escape(data['title'])}[/bold]  "
        f"(règles {data['rules_version']}, modèle {data['model_version'] or 'aucun'})"
    )
    for label, d in sorted(data["labels"].items(), key=lambda kv: -kv[1]["score"]):
        mark = "[green]sélectionnée[/green]" if d["selected"] else "[dim]non sélectionnée[/dim]"
        ms = "-" if d["model_score"] is None else f"{d['model_score']:.2f}"
        if d["model_score"] is not None and not d["model_counted"]:
            why = f"sous {MODEL_ALONE:.2f}" if d["model_score"] < MODEL_ALONE else "aucune règle n'a rien trouvé ici"
            ms += f" [dim](non compté : aucune règle, et {why})[/dim]"
        console.print(
            f"{label} : {d['score']:.2f} (règles {d['rule_score']:.2f}, modèle {ms}, seuil {d['threshold']:.2f}) {mark}"
        )
        _print_why(d, ids)
    _print_stored(data)


def _print_why(d: dict, ids: bool) -> None:
    """The verdict in force, then each rule that fired: its description and the words as written."""
    from nlp.explain import field_name, sentence
    from storage.feedback import describe

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
        console.print(
            "pas encore scorée dans l'archive : le prochain cycle ou `veille classify` la score", markup=False
        )
        return
    first = next(iter(stored.values()))
    why = {
        "versions": f"faits par les règles {first['rules_version']}, modèle {first['model_version'] or 'aucun'}",
        "reading": "faits avant la lecture du texte et le calcul des scores de cette version",
        "changed": "faits avant la dernière modification de la notice",
    }.get(first["outdated"])
    if why:
        shown = ", ".join(sorted(lb for lb, st in stored.items() if st["selected"])) or "aucune thématique"
        console.print(
            f"scores archivés périmés ({why}) : l'archive montre {shown} jusqu'à ce que le prochain cycle ou "
            "`veille classify` la reclasse",
            markup=False,
        )


@rules_app.command("check")
def rules_check(
    file: Path | None = typer.Argument(None, metavar="FICHIER", help="Fichier de règles (défaut : celui en vigueur)."),
) -> None:
    """Valider un fichier de règles ; affiche fichier:ligne: ce qui ne va pas."""
    from core.profiles import load_labels
    from nlp.rules import RulesError, load_rules, rules_path

    path = file or rules_path(state.settings)
    try:
        rs = load_rules(path, set(load_labels(state.settings)))
    except RulesError as exc:
        fail(str(exc))
    console.print(f"{path} : ok, {len(rs.rules)} règles pour {len(rs.labels)} thématiques, version {rs.version}")


@rules_app.command("words")
def rules_words(
    phrase: str = typer.Argument(
        ..., metavar="EXPRESSION", help="Une expression telle qu'elle serait écrite dans le fichier de règles."
    ),
    lang: str = typer.Option("any", "--lang", help="en, fr ou any (les deux), la clé sous laquelle elle irait."),
    limit: int = typer.Option(2000, "--limit", help="Nombre de notices récentes lues pour leurs mots."),
) -> None:
    """Les mots de l'archive qu'EXPRESSION attrape : les expressions portent sur les radicaux, à vérifier avant."""
    from rich.table import Table

    from nlp.phrase_words import phrase_words

    try:
        res = phrase_words(state.engine(), state.settings, phrase, lang, limit)
    except ValueError as exc:
        fail(str(exc))
    stems = "; ".join(f"{lg}: {' '.join(st)}" for lg, st in res.stems)
    head = f"{phrase!r} est cherchée par les radicaux ({stems}) : {res.notices} notice(s) les contiennent (tout champ)"
    console.print(head, markup=False)
    if not res.forms:
        console.print("aucune notice ne les a dans un champ de cette langue")
        return
    table = Table("mots tels qu'écrits", "notices", "p. ex.", title=f"dans les {res.read} plus récentes")
    for form, n in res.forms.most_common():
        table.add_row(form, str(n), ", ".join(map(str, res.examples[form])))
    console.print(table)


@rules_app.command("save")
def rules_save(
    new_rules: Path = typer.Argument(..., metavar="FICHIER", help="Fichier de règles à mettre en vigueur."),
    by: str | None = typer.Option(
        None, "--by", help="Qui l'enregistre, pour l'historique (défaut : le nom de connexion)."
    ),
) -> None:
    """Mettre FICHIER en vigueur (après `veille rules diff`), la version précédente gardée dans l'historique."""
    from nlp.rules import RulesError, read_rules, save_rules

    try:
        text = read_rules(new_rules)
    except RulesError as exc:
        fail(str(exc))
    try:  # a failure to write names the history or the rules file, never FICHIER
        version = save_rules(state.settings, text, by, filename=str(new_rules))
    except RulesError as exc:
        fail(str(exc))
    console.print(
        f"règles version {version} en vigueur ; la précédente est dans l'historique. Les cycles reclassent "
        "l'archive avec elles, notices récentes d'abord, ou tout de suite : veille classify",
        markup=False,
    )


@rules_app.command("diff")
def rules_diff(
    new_rules: Path = typer.Argument(..., metavar="FICHIER", help="Fichier de règles candidat."),
    show: int = typer.Option(20, "--show", help="Ids de notices listés par thématique et sens."),
    as_json: bool = typer.Option(False, "--json", help="Afficher le résultat complet en JSON."),
) -> None:
    """Rejeu : quelles notices gagneraient ou perdraient chaque thématique avec FICHIER (rien n'est enregistré)."""
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
        f"règles {res.current_version} -> {res.candidate_version} : {res.notices} notices, "
        f"{res.rescored} reclassées en {res.seconds:.2f} s"
    )
    if res.note:
        console.print(f"note : {res.note}", markup=False)
    for lb, d in res.labels.items():
        g, lo = d.counts
        line = f"{lb} : +{g} -{lo}"
        if g:
            line += f"  gagnées {d.gained[:show]}"
        if lo:
            line += f"  perdues {d.lost[:show]}"
        console.print(line)
