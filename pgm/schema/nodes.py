"""Pydantic models for the parts of a graph file: nodes, cliques, plates, priors.

Every model forbids unknown fields (a typo must not pass silently) and is frozen.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

#: Largest state count or plate size a file may declare; larger ones are refused
#: before anything is allocated.
MAX_STATES = 100_000
MAX_PLATE = 100_000
MAX_DIM = 10_000

Name = Annotated[str, Field(min_length=1)]


def _label(value: Any) -> str:
    """A state label as a string: YAML scalars (1, -1, 0.5, true) become their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError(f"a state label must be a scalar (text or number), got {type(value).__name__}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: The forms ``dirichlet:`` takes, for error messages.
_DIRICHLET_FORMS = ("`dirichlet: a` (one pseudo-count for every cell), `dirichlet: [a_1, ..., a_k]` (one per "
                    "state, the same for every parent configuration) or `dirichlet: [[...], ...]` (a full table: "
                    "one row of k per parent configuration, in the order of the fitted `table:`)")


def _pseudo_count(value: Any, where: str) -> float:
    """One pseudo-count: a finite number >= 0 (not a boolean, not text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}{value!r} is not a number; pseudo-counts are numbers >= 0, in "
                         + _DIRICHLET_FORMS)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where}input should be a finite number (got {value}); a pseudo-count is a finite "
                         "number >= 0")
    if value < 0:
        raise ValueError(f"{where}pseudo-count {value:g} is negative; a pseudo-count is a number >= 0 "
                         "(0 adds nothing to that cell)")
    return value


def _dirichlet(value: Any) -> float | list[float] | list[list[float]] | None:
    """Check the value of ``dirichlet:`` and return it as a float, a list, or a list of lists of floats.

    The lengths are checked against the node's states and parents by the structural checks
    (:func:`pgm.schema.spec.check_structure`), which know the parents' state counts."""
    if value is None:
        return None
    if not isinstance(value, list):
        return _pseudo_count(value, "")
    if not value:
        raise ValueError("the list of pseudo-counts is empty; give " + _DIRICHLET_FORMS)
    rows = [isinstance(v, list) for v in value]
    if not any(rows):
        return [_pseudo_count(v, f"entry [{i}]: ") for i, v in enumerate(value)]
    if not all(rows):
        first = rows.index(False) if rows[0] else rows.index(True)
        raise ValueError(f"entry [{first}] mixes numbers and lists; give {_DIRICHLET_FORMS}")
    table = []
    for i, row in enumerate(value):
        if not row:
            raise ValueError(f"row [{i}] of the pseudo-count table is empty; each row holds one pseudo-count "
                             "per state")
        if any(isinstance(v, list) for v in row):
            raise ValueError(f"row [{i}] nests lists more than two deep; give {_DIRICHLET_FORMS}")
        table.append([_pseudo_count(v, f"entry [{i}][{j}]: ") for j, v in enumerate(row)])
    return table


class Prior(_Strict):
    """Dirichlet prior of a table CPD.

    ``{dirichlet: a}`` adds ``a`` pseudo-counts to every cell; ``{dirichlet: [a_1, ..., a_k]}``
    adds ``a_j`` to state ``j`` under every parent configuration; ``{dirichlet: [[...], ...]}``
    gives every cell its own pseudo-count (one row per parent configuration, in the order of
    the fitted ``table:``).  ``{bdeu: ess}`` spreads an equivalent sample size ``ess``
    uniformly over the cells of the node's table (``ess / (n_configs * n_states)`` per cell)."""

    dirichlet: float | list[float] | list[list[float]] | None = None
    bdeu: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @field_validator("dirichlet", mode="before")
    @classmethod
    def _dirichlet_ok(cls, value: Any) -> Any:
        return _dirichlet(value)

    @model_validator(mode="after")
    def _one_kind(self) -> "Prior":
        if (self.dirichlet is None) == (self.bdeu is None):
            raise ValueError("give exactly one of `dirichlet: a` or `bdeu: ess`")
        return self


class DiscreteNode(_Strict):
    """A node with finitely many states: named (``states: [yes, no]``) or counted (``states: 3``)."""

    type: Literal["discrete"] = "discrete"
    states: list[str] | int | None = None
    parents: list[Name] = []
    prev: list[Name] = []
    latent: bool = False
    plate: Name | None = None
    cpd: Literal["table", "logistic", "noisy-or"] = "table"
    tie: Name | None = None
    prior: Prior | None = None
    penalty: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    unary: bool = True
    description: str | None = None

    @field_validator("states", mode="before")
    @classmethod
    def _states_ok(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, list)):
            raise ValueError(f"`states` must be a list of labels ([yes, no]) or a state count (3), got {value!r}")
        if isinstance(value, int):
            if not 1 <= value <= MAX_STATES:
                raise ValueError(f"a state count must be between 1 and {MAX_STATES}, got {value}")
            return value
        value = [_label(v) for v in value]
        if not value:
            raise ValueError("the state list is empty; list at least one state, e.g. [yes, no]")
        if len(value) > MAX_STATES:
            raise ValueError(f"{len(value)} states is more than the limit {MAX_STATES}")
        seen: set[str] = set()
        for label in value:
            if label in seen:
                raise ValueError(f"duplicate state {label!r}; each state must be listed once")
            seen.add(label)
        return value

    @property
    def n_states(self) -> int:
        """The number of states (``states`` must be set)."""
        return self.states if isinstance(self.states, int) else len(self.states or [])

    @property
    def labels(self) -> list[str]:
        """State labels: the declared ones, or ``'0'..'k-1'`` for a state count."""
        if isinstance(self.states, int):
            return [str(i) for i in range(self.states)]
        return list(self.states or [])


class GaussianNode(_Strict):
    """A real-valued node (``dim`` components), linear-Gaussian in its continuous parents,
    one regression per configuration of its discrete parents."""

    type: Literal["gaussian"]
    dim: Annotated[int, Field(ge=1, le=MAX_DIM, strict=True)] = 1  # strict: `dim: true` is no 1
    columns: list[Name] | None = None
    parents: list[Name] = []
    prev: list[Name] = []
    latent: bool = False
    plate: Name | None = None
    cpd: Literal["linear"] = "linear"
    covariance: Literal["full", "diag", "spherical", "tied"] = "full"
    tie: Name | None = None
    standard: bool | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _columns_match(self) -> "GaussianNode":
        if self.columns is not None:
            if len(self.columns) != self.dim:
                raise ValueError(
                    f"`columns` names {len(self.columns)} columns but dim is {self.dim}; "
                    "give one column name per dimension"
                )
            if len(set(self.columns)) != len(self.columns):
                raise ValueError("`columns` repeats a column name; each must be distinct")
        return self


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "discrete"))
    return str(getattr(value, "type", "discrete"))


Node = Annotated[
    Union[Annotated[DiscreteNode, Tag("discrete")], Annotated[GaussianNode, Tag("gaussian")]],
    Discriminator(
        _node_kind,
        custom_error_type="node_type",
        custom_error_message="unknown node type; use `type: discrete` (the default) or `type: gaussian`",
    ),
]


class Sequence(_Strict):
    """Top-level ``sequence: {id: seq, order: t}``: the data are long, one row per step of a
    sequence; ``id`` names the column of sequence names, ``order`` the column that orders the
    steps (numbers or timestamps)."""

    id: Name
    order: Name

    @model_validator(mode="after")
    def _distinct(self) -> "Sequence":
        if self.id == self.order:
            raise ValueError(f"`id` and `order` both name column {self.id!r}; they must be two different columns")
        return self


class Clique(_Strict):
    """A clique of an undirected graph with its feature family."""

    nodes: list[Name] = Field(min_length=1)
    features: Name = "table"
    tie: Name | None = None


class Plate(_Strict):
    """An inner plate: its nodes are repeated ``size`` times with shared parameters."""

    size: Annotated[int, Field(ge=1, le=MAX_PLATE)]
    description: str | None = None

    @field_validator("size", mode="before")
    @classmethod
    def _size_ok(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"plate size {str(value).lower()}: give the number of copies, e.g. `size: 5`")
        if isinstance(value, int):
            if value < 1:
                raise ValueError(f"plate size {value}: a plate needs at least one copy; set `size` to a "
                                 "positive count, or remove the plate and its `plate:` fields")
            if value > MAX_PLATE:
                raise ValueError(f"plate size {value} is more than the limit {MAX_PLATE}; a plate holds "
                                 "a fixed, modest number of copies (use rows of data for more)")
        return value
