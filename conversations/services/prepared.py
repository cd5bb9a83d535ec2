"""Model reads the ORM builds once and then only runs: for the few statements of a turn's
hot path (the conversation lock, the claim, the finishing lock).

Building a query (filters, `select_related`, the select list of a wide row, FOR UPDATE)
and compiling it to SQL cost Django more CPU than the database spent running it. A
`PreparedRead` builds its queryset once per connection, with stand-in values for the
parameters, keeps the compiled SQL and the compiler's column map, and from then on binds
the real values (adapted by the parameter's field, as the ORM would), executes, and
builds the instances (the backend's converters, `Model.from_db`, the `select_related`
populators) as `QuerySet` iteration does. The statement is the ORM's own, so it is the
same SQL on every backend, locks included.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Field, Model, QuerySet
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=Model)

_stand_ins = itertools.count(1)
_lock = threading.Lock()


def _stand_in(field: Field) -> Any:
    """A value of `field`'s type that no real query uses, told apart after adaptation."""
    number = 987_654_000 + next(_stand_ins)
    kind = (field.target_field if field.is_relation else field).get_internal_type()  # type: ignore[attr-defined]
    if kind == "UUIDField":
        return uuid.UUID(int=number)
    if kind in ("CharField", "TextField"):
        return f"\x00stand-in-{number}"
    return -number


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]  # where each argument goes in `params`
    compiler: Any
    model_start: int
    model_end: int
    init_list: list[str]
    populators: list[Any]
    annotations: tuple[tuple[str, int], ...]


class PreparedRead(Generic[M]):
    """`build(*values)` is a queryset of model instances (annotations become attributes;
    no prefetch);
    `fields` say how each value is adapted (the field it is compared with)."""

    def __init__(self, build: Callable[..., QuerySet[M]], *fields: Field) -> None:
        self.build = build
        self.fields = fields
        self.key = f"_prepared_read_{id(self)}"

    def _compiled(self, alias: str) -> _Compiled:
        connection = connections[alias]
        compiled: _Compiled | None = connection.__dict__.get(self.key)
        if compiled is not None:
            return compiled
        with _lock:
            stand_ins = [_stand_in(field) for field in self.fields]
        queryset = self.build(*stand_ins)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        adapted = [field.get_db_prep_value(value, connection) for field, value in zip(self.fields, stand_ins, strict=True)]
        slots = []
        for value in adapted:
            found = [index for index, param in enumerate(params) if param == value]
            if len(found) != 1:
                raise ValueError(f"cannot place a parameter of {sql!r}")
            slots.append(found[0])
        klass_info, select = compiler.klass_info, compiler.select
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        compiled = _Compiled(
            sql=sql, params=tuple(params), slots=tuple(slots), compiler=compiler, model_start=start,
            model_end=end, init_list=[column[0].target.attname for column in select[start:end]],
            populators=get_related_populators(klass_info, select, alias),
            annotations=tuple(compiler.annotation_col_map.items()),
        )
        connection.__dict__[self.key] = compiled
        return compiled

    def all(self, *values: Any, using: str = "default") -> list[M]:
        compiled = self._compiled(using)
        connection = connections[using]
        params = list(compiled.params)
        for slot, field, value in zip(compiled.slots, self.fields, values, strict=True):
            params[slot] = field.get_db_prep_value(value, connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        model = compiled.compiler.klass_info["model"]
        found = []
        for row in compiled.compiler.results_iter(results=[rows]):
            instance = model.from_db(using, compiled.init_list, row[compiled.model_start : compiled.model_end])
            for populator in compiled.populators:
                populator.populate(row, instance)
            for name, position in compiled.annotations:
                setattr(instance, name, row[position])
            found.append(instance)
        return found

    def first(self, *values: Any, using: str = "default") -> M | None:
        found = self.all(*values, using=using)
        return found[0] if found else None
