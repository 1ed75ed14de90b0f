"""Reading a rules file within bounds: size, YAML nodes, aliases, depth and tags.

A rules file is analyst input that every cycle and every page reads, so reading it must neither hang
nor run anything: libyaml's event parser (C, iterative) feeds a composer that counts as it builds,
refusing a file past the bounds below with ``file:line: ...`` before anything expands its aliases;
only the safe YAML types are constructed. The bounds are documented in docs/nlp.md (The rules file).
"""

from __future__ import annotations

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

try:  # libyaml's parser: 10x faster than the pure-Python one on the HAS rules (a backtest parses two files)
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


MAX_BYTES = 512 * 1024  # the HAS rules are 33 KB
MAX_NODES = 100_000  # YAML nodes, counting each alias as the nodes it stands for (the HAS rules: 1,815)
MAX_ALIASES = 100
MAX_DEPTH = 20  # nesting of lists and mappings (the HAS rules: 7)
# The only tags constructed: plain YAML data. Anything else (!!python/..., !!binary, !!set, !local) is refused.
SAFE_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


class LoadError(ValueError):
    """``line: problem``; nlp.rules turns it into a RulesError naming the file."""

    def __init__(self, line: int | str, problem: str) -> None:
        super().__init__(f"{line}: {problem}")
        self.line, self.problem = line, problem


class BoundedLoader(Composer, _Parser, Resolver):
    """Composes one YAML document, refusing it past MAX_NODES / MAX_ALIASES / MAX_DEPTH or with an unsafe tag.

    Composing is the only stage where an alias is cheap (the same node object); anything that walks the
    result (constructing, checking patterns, hashing them) pays for every alias expanded, so the count
    includes them: an alias bomb of a few hundred bytes is refused at its first overflowing alias."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        Composer.__init__(self)
        Resolver.__init__(self)
        self._nodes = self._aliases = self._depth = 0
        self._sizes: dict[str, int] = {}  # anchor -> nodes it stands for, once composed

    def compose_node(self, parent: Node | None, index: object) -> Node:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else "?"
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise LoadError(line, f"too many aliases (more than {MAX_ALIASES})")
            if event.anchor in self.anchors and event.anchor not in self._sizes:
                raise LoadError(line, f"alias *{event.anchor} refers to a list or mapping that contains it")
            self._count(self._sizes.get(event.anchor, 0), line)
            return super().compose_node(parent, index)
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and self._full_tag(tag) not in SAFE_TAGS:
            raise LoadError(line, f"YAML tag {tag!r} is not allowed (plain values, lists and mappings only)")
        anchor = getattr(event, "anchor", None)
        self._sizes.pop(anchor, None)  # an anchor defined again: its aliases inside refer to this new node
        self._count(1, line)
        nested = isinstance(event, SequenceStartEvent | MappingStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise LoadError(line, f"nested too deep (more than {MAX_DEPTH} levels of lists and mappings)")
        before = self._nodes
        node = super().compose_node(parent, index)
        if nested:
            self._depth -= 1
        if anchor is not None:
            self._sizes[anchor] = self._nodes - before + 1
        if node.tag not in SAFE_TAGS:  # '<<' (merge) or '=' (value): resolved to types not constructed safely
            raise LoadError(line, f"YAML {node.tag.rsplit(':', 1)[-1]} {node.value!r} is not allowed: quote it")
        return node

    def _count(self, n: int, line: int | str) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise LoadError(line, f"too many YAML nodes (more than {MAX_NODES:,}, aliases expanded)")

    @staticmethod
    def _full_tag(tag: str) -> str:
        return "tag:yaml.org,2002:" + tag[2:] if tag.startswith("!!") else tag


def compose_yaml(text: str) -> Node | None:
    """The document's root node (None for an empty file), or LoadError(line, problem)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise LoadError(1, f"rules file too large ({size:,} bytes, at most {MAX_BYTES:,})")
    loader = BoundedLoader(text)
    try:
        return loader.get_single_node()
    except LoadError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise LoadError(mark.line + 1 if mark else "?", f"invalid YAML: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (control characters...)
        line = text[: exc.position].count("\n") + 1
        raise LoadError(line, f"invalid YAML: character {exc.character!r} not allowed") from None
    except yaml.YAMLError as exc:
        raise LoadError("?", f"invalid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()


def construct(node: Node) -> object:
    """The Python value of a composed node: safe types only; a bad value (a date that does not exist, an
    integer of more digits than Python converts) is a LoadError at its line, never another exception."""
    try:
        return SafeConstructor().construct_document(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None) or node.start_mark
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise LoadError(mark.line + 1, f"invalid value: {problem[:200]}") from None
