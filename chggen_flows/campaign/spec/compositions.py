"""The composition mini-language of campaign specs: element lists, reduced formulas,
ranges filtered by a condition (``Li > Si``) and pseudo-binary lines (``ZnS-P2S5``)."""

from __future__ import annotations

import ast
import itertools
import math
import operator
import re
from functools import reduce

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymatgen.core import Composition, Element


class SpecModel(BaseModel):
    """Base of the spec's own sections: an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")


def check_elements(symbols: list[str]) -> list[str]:
    for symbol in symbols:
        if not Element.is_valid_symbol(symbol):
            raise ValueError(f"unknown element {symbol!r}")
    return symbols


def parse_composition(formula: str) -> Composition:
    """A composition with known elements and positive amounts, or a ValueError."""
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"empty composition {formula!r}")
    for token in _formula_symbols(formula):
        if not Element.is_valid_symbol(token):
            raise ValueError(f"unknown element {token!r} in composition {formula!r}")
    try:
        comp = Composition(formula)
    except Exception as exc:  # pymatgen raises several types for unparsable formulas
        raise ValueError(f"cannot parse composition {formula!r}: {exc}") from exc
    if any(amount <= 0 for amount in comp.values()) or comp.num_atoms <= 0:
        raise ValueError(f"composition {formula!r} has zero or negative amounts")
    if any(abs(amount - round(amount)) > 1e-8 for amount in comp.values()):
        raise ValueError(f"composition {formula!r} needs integer amounts")
    return comp


def plain_formula(composition: Composition) -> str:
    """Reduced formula without pymatgen's polyanion brackets: ``ZnP2S6``, not ``Zn(PS3)2``
    (used in candidate ids and file names)."""
    # ``formula`` orders elements by electronegativity ("Zn1 P2 S6"); drop the 1s.
    tokens = composition.reduced_composition.formula.split()
    return "".join(token[:-1] if re.fullmatch(r"[A-Za-z]+1", token) else token for token in tokens)


def _formula_symbols(formula: str) -> list[str]:
    """Element-like tokens of a formula (capital letter + lower-case letters)."""
    symbols, current = [], ""
    for char in formula:
        if char.isupper():
            if current:
                symbols.append(current)
            current = char
        elif char.islower() and current:
            current += char
        else:
            if current:
                symbols.append(current)
            current = ""
    if current:
        symbols.append(current)
    return symbols


_COMPARE = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(node: ast.AST, counts: dict[str, int]) -> float | bool:
    """Evaluate a condition such as ``Li > Si`` or ``Li >= 2*Si`` on element counts.

    Only comparisons, +, -, *, numbers, element symbols and ``and``/``or`` are allowed, so
    a spec can never run code.
    """
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, counts)
    if isinstance(node, ast.Name):
        if node.id not in counts:
            raise ValueError(f"condition names {node.id!r}, not one of {sorted(counts)}")
        return counts[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        return _ARITH[type(node.op)](_evaluate(node.left, counts), _evaluate(node.right, counts))
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, counts)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, counts)
            if type(op) not in _COMPARE or not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [bool(_evaluate(v, counts)) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    raise ValueError(f"unsupported expression {ast.unparse(node)!r} in condition")


class CompositionRange(SpecModel):
    """All compositions ``A_x B_y ...`` with integer counts in ``[1, max_count]``.

    Only reduced formulas are kept (``Li2Si2`` is ``LiSi``); ``condition`` filters them,
    e.g. ``"Li > Si"`` for the Li-rich side of Li-Si.
    """

    elements: list[str] = Field(min_length=2)
    max_count: int = Field(6, ge=1, le=20)
    condition: str | None = None

    _check = field_validator("elements")(classmethod(lambda cls, v: check_elements(v)))

    @field_validator("condition")
    @classmethod
    def _parse_condition(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ast.parse(value, mode="eval")
            except SyntaxError as exc:
                raise ValueError(f"condition {value!r} is not an expression: {exc.msg}") from exc
        return value

    def expand(self) -> list[str]:
        """The reduced formulas in the range, in a stable order."""
        tree = ast.parse(self.condition, mode="eval") if self.condition else None
        formulas = []
        for counts in itertools.product(range(1, self.max_count + 1), repeat=len(self.elements)):
            if reduce(math.gcd, counts) != 1:
                continue
            named = dict(zip(self.elements, counts, strict=True))
            if tree is not None and not _evaluate(tree, named):
                continue
            formulas.append(plain_formula(Composition(named)))
        return formulas


class CompositionLine(SpecModel):
    """Compositions on a pseudo-binary line ``a * A + b * B`` (e.g. ZnS-P2S5)."""

    endpoints: tuple[str, str]
    ratios: list[tuple[int, int]] = Field(min_length=1)

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: tuple[str, str]) -> tuple[str, str]:
        for formula in value:
            parse_composition(formula)
        return value

    @field_validator("ratios")
    @classmethod
    def _check_ratios(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for a, b in value:
            if a < 0 or b < 0 or a + b == 0:
                raise ValueError(f"ratio {a}:{b} needs non-negative counts, not both zero")
        return value

    def expand(self) -> list[str]:
        """The reduced formulas of the line's points, duplicates removed."""
        first, second = (Composition(f) for f in self.endpoints)
        formulas = [plain_formula(a * first + b * second) for a, b in self.ratios]
        return list(dict.fromkeys(formulas))
