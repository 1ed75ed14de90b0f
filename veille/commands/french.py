"""Typer's and click's own words in French: the help's usage line, panel titles and types, and usage errors.

Typer 0.29 vendors click (``typer._click``) with its messages as f-strings, not through gettext: there is no
catalogue to install, whatever the user's LANG. The words are therefore made French where they are made, once
for every command (docs/decisions.md, *The CLI's language*):

- the command classes (:class:`FrenchCommand`, :class:`FrenchGroup`; :func:`adopt` gives them to every command
  of an app) write the usage line, the help option's help and the parameters' types;
- typer's rich help reads its panel titles and ``[default: …]`` from ``typer.rich_utils``' constants, set
  here before a help is printed (that module loads only for a help or an error: start-up time);
- a usage error (click's exception classes and their attributes: the option, the parameter, pydantic's error
  for a value) is said as one line ``erreur : …``, as the commands' own errors, then the usage and the help.
"""

from __future__ import annotations

import os
import re
from typing import Any

import typer
from typer import _click
from typer._click.exceptions import (
    BadParameter,
    ClickException,
    FileError,
    MissingParameter,
    NoArgsIsHelpError,
    NoSuchOption,
    UsageError,
)
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.exceptions import Abort

USAGE = "Utilisation : "
HELP_OPTION = "Afficher cette aide et quitter."
SUBCOMMANDS = "COMMANDE [ARGUMENTS]..."

# typer.rich_utils' words, read when a help or an error box is printed.
RICH_WORDS = {
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commandes",
    "ERRORS_PANEL_TITLE": "Erreur",
    "ABORTED_TEXT": "Interrompu.",
    "RICH_HELP": "Aide : [blue]{command_path} {help_option}[/]",
    "DEFAULT_STRING": "[défaut : {}]",
    "REQUIRED_LONG_STRING": "[obligatoire]",
    "ENVVAR_STRING": "[variable d'environnement : {}]",
    "DEPRECATED_STRING": "(obsolète) ",
}

# A value's type in the help, by the annotation typer shows (``<str>``, ``<int range>``, ``<list[str]>``...).
TYPE_WORDS = {"str": "texte", "int": "entier", "float": "nombre", "bool": "oui|non", "datetime": "date"}

# Click's usage errors that carry only their English message (the parser's and typer's groups'); compiled on use.
MESSAGES = [
    (r"Got unexpected extra argument\(s\) \((.*)\)", "argument(s) en trop : {0}"),
    (r"No such command '(.*)'\.(?: Did you mean (.*)\?)?", "commande inconnue : {0}{1}"),
    (r"Missing command\.", "commande manquante"),
    (r"Option '(.*)' does not take a value\.", "l'option {0} ne prend pas de valeur"),
    (r"Option '(.*)' requires an argument\.", "l'option {0} demande une valeur"),
    (r"Option '(.*)' requires (\d+) arguments\.", "l'option {0} demande {1} valeurs"),
    (r"Argument '(.*)' takes (\d+) values\.", "l'argument {0} prend {1} valeurs"),
    (r"Value must be an iterable\.", "plusieurs valeurs attendues"),
]


def rich_in_french() -> None:
    from typer import rich_utils

    for name, text in RICH_WORDS.items():
        setattr(rich_utils, name, text)


def _in_french(param: TyperOption | TyperArgument, shown: str | None) -> str | None:
    """The type typer shows for ``param`` (``<str>``, ``<int range>``, ``<list[str]>``, ``<a|b>``) in French;
    none for a flag (``--exact`` takes no value)."""
    if shown is None or getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.type_descriptor.is_choice:
        return shown
    if param.type_descriptor.is_path:
        return "<chemin>"
    word = shown.strip("<>").removeprefix("list[").removesuffix("]").removesuffix(" range")
    return f"<{TYPE_WORDS.get(word, word)}>"


class _Option(TyperOption):
    def display_type(self, ctx: _click.Context) -> str:
        return _in_french(self, super().display_type(ctx))  # type: ignore[return-value]


class _Argument(TyperArgument):
    def display_type(self, ctx: _click.Context) -> str:
        return _in_french(self, super().display_type(ctx))  # type: ignore[return-value]


class French:
    """What :class:`FrenchCommand` and :class:`FrenchGroup` add to typer's classes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:  # typer makes them: their class is changed for the type they show
            if type(param) is TyperOption:
                param.__class__ = _Option
            elif type(param) is TyperArgument:
                param.__class__ = _Argument

    def format_usage(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)), prefix=USAGE)

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        rich_in_french()
        super().format_help(ctx, formatter)

    def get_help_option(self, ctx: _click.Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and type(option) is TyperOption:
            option.help, option.__class__ = HELP_OPTION, _Option
        return option

    def make_context(self, *args: Any, **kwargs: Any) -> _click.Context:
        with _said_in_french():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: _click.Context) -> Any:
        with _said_in_french():
            return super().invoke(ctx)


class FrenchCommand(French, TyperCommand):
    pass


class FrenchGroup(French, TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.subcommand_metavar == "COMMAND [ARGS]...":  # typer's default
            self.subcommand_metavar = SUBCOMMANDS

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        """Shell completion without typer's ``--install-completion`` options (``add_completion=False``, whose
        install messages are English): ``eval "$(_VEILLE_COMPLETE=source_bash veille)"`` in the shell's rc
        file (docs/decisions.md). Typer registers its shells' classes only with those options: here, on use."""
        var = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        if os.environ.get(var):
            from typer.completion import completion_init

            completion_init()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)


def ask_twice(text: str, again: str) -> str:
    """A hidden value typed twice (a password). ``typer.prompt(confirmation_prompt=...)`` says a mismatch in
    English ("Error: The two entered values do not match."): the second asking is done here."""
    while True:
        first = typer.prompt(text, hide_input=True, prompt_suffix=" : ")
        if first == typer.prompt(again, hide_input=True, prompt_suffix=" : "):
            return first
        _err().print("[red]erreur :[/red] les deux saisies diffèrent ; recommencez.", markup=True, highlight=False)


def adopt(app: typer.Typer) -> None:
    """Every command and sub-group of ``app`` (registered so far) made with the French classes."""
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):  # typer's default: a command's own class is left as it is
            command.cls = FrenchCommand
    for group in app.registered_groups:
        instance = group.typer_instance
        chosen = [c for c in (group.cls, instance.info.cls if instance else None) if isinstance(c, type)]
        if all(c is TyperGroup for c in chosen):  # typer's default, as for commands
            group.cls = FrenchGroup
        if instance is not None:
            adopt(instance)


class _said_in_french:
    """A usage error raised inside: printed in French (one line, then the usage and the help), exit 2."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, Abort):  # an interrupted prompt
            _err().print("[red]Interrompu.[/red]", markup=True, highlight=False)
            raise typer.Exit(1) from None
        if isinstance(exc, NoArgsIsHelpError) or not isinstance(exc, ClickException):
            return False  # the help was printed; not a usage error
        _print(exc)
        raise typer.Exit(exc.exit_code) from None


def _err() -> Any:
    from veille.commands.base import err  # the commands' stderr console (messages on one line)

    return err


def _print(exc: ClickException) -> None:
    from rich.markup import escape

    err = _err()
    err.print(f"[red]erreur :[/red] {escape(say(exc))}", markup=True, highlight=False, soft_wrap=True)
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        err.print(escape(ctx.get_usage()), markup=True, highlight=False, soft_wrap=True)
        if ctx.command.get_help_option(ctx) is not None:
            err.print(f"Aide : {escape(ctx.command_path)} {ctx.help_option_names[0]}", highlight=False)


def say(exc: ClickException) -> str:
    """Click's usage error in French, from its class and attributes."""
    if isinstance(exc, NoSuchOption):
        near = f" ; vouliez-vous dire {' ou '.join(sorted(exc.possibilities))} ?" if exc.possibilities else ""
        return f"option inconnue : {exc.option_name}{near}"
    if isinstance(exc, MissingParameter):
        param, kind = exc.param, exc.param_type or getattr(exc.param, "param_type_name", "")
        name = _name(param) if param is not None else ""
        return f"option {name} manquante" if kind == "option" else f"argument {name} manquant"
    if isinstance(exc, BadParameter):
        where = _name(exc.param) if exc.param is not None else ""
        return f"valeur invalide pour {where} : {_value_problem(exc)}" if where else f"valeur invalide : {exc.message}"
    if isinstance(exc, FileError):
        return f"impossible d'ouvrir {exc.ui_filename} : {exc.message}"
    if isinstance(exc, UsageError):
        for pattern, french in MESSAGES:
            if m := re.fullmatch(pattern, exc.message.strip(), re.S):
                groups = [g or "" for g in m.groups()]
                if french.endswith("{0}{1}") and groups[1]:  # typer's suggestion of a command
                    groups[1] = f" ; vouliez-vous dire {groups[1].replace(', ', ' ou ')} ?"
                return french.format(*groups)
    return f"utilisation incorrecte ({exc.format_message()})"


def _name(param: Any) -> str:
    """How the person typed or reads the parameter: ``--limit / -n``, or an argument's name (``ID``)."""
    if param.param_type_name == "option":
        return " / ".join(param.opts)
    return param.metavar or param.name.upper()


def _value_problem(exc: BadParameter) -> str:
    """Pydantic's error behind typer's coercion, said as the config files' errors are (core.schema)."""
    from pydantic import ValidationError

    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        from core.schema import problem

        return problem(cause.errors(include_url=False)[0])
    return exc.message
