"""YAML that ge-nas reads from users (space files, dataset and model YAMLs): safely, and small.

``yaml.safe_load`` already refuses tags that would run code. What it allows is aliases: a
few hundred bytes of ``&a [*b, *b, ...]`` describe gigabytes once anything walks the value
(a deep copy, a hash, an error message that prints it). So every document is measured as
it would be expanded, from its node graph and without expanding it, and refused beyond
:data:`MAX_EXPANDED_NODES`.

Example:
    >>> load_yaml("a: &x [1, 2]\\nb: *x\\n", "demo.yaml")
    {'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from ge_nas.errors import InputError

__all__ = ["MAX_EXPANDED_NODES", "excerpt", "load_yaml"]

# Far more than any real space, dataset or model file (yolov8x.yaml expands to about 400 nodes).
MAX_EXPANDED_NODES = 100_000


def load_yaml(text: str, source: str) -> Any:
    """The document in ``text`` as Python data.

    Raises:
        InputError: not valid YAML (with the line and column), or it expands beyond
            :data:`MAX_EXPANDED_NODES` nodes through aliases.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{source}: not valid YAML{where}: fix the syntax") from None
    if node is None:
        return None
    size = _expanded_size(node, {}, 0)
    if size > MAX_EXPANDED_NODES:
        raise InputError(
            f"{source}: its aliases expand to more than {MAX_EXPANDED_NODES:,} values (an alias bomb?); "
            "write the values out, or use fewer nested aliases"
        )
    return yaml.safe_load(text)


def excerpt(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: error messages never print a whole value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expanded_size(node: Node, sizes: dict[int, int], depth: int) -> int:
    """How many nodes ``node`` becomes once every alias is expanded (memoised per shared node)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if depth > 200:  # deeper than any real file; also stops a recursive alias
        return MAX_EXPANDED_NODES + 1
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, sizes, depth + 1) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(
            _expanded_size(key, sizes, depth + 1) + _expanded_size(value, sizes, depth + 1) for key, value in node.value
        )
    sizes[id(node)] = min(size, MAX_EXPANDED_NODES + 1)
    return sizes[id(node)]
