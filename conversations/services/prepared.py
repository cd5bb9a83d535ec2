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

from django.db import DatabaseError, connections
from django.db.models import Field, Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

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
    converters: dict[int, Any]  # the backend's value converters by column (as `results_iter`)
    locks: bool  # SELECT ... FOR UPDATE


class PreparedRead(Generic[M]):
    """`build(*values)` is a queryset of model instances (annotations become attributes;
    no prefetch); `fields` say how each value is adapted (the field it is compared
    with). A locking read refuses to run outside a transaction, as the ORM's does."""

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
            populators=get_related_populators(klass_info, select, alias),  # type: ignore[call-arg]  # the stubs follow a later Django
            annotations=tuple(compiler.annotation_col_map.items()),
            converters=compiler.get_converters([column[0] for column in select[: compiler.col_count]]),
            locks=bool(queryset.query.select_for_update and connection.features.has_select_for_update),
        )
        connection.__dict__[self.key] = compiled
        return compiled

    def all(self, *values: Any, using: str = "default") -> list[M]:
        compiled = self._compiled(using)
        connection = connections[using]
        if compiled.locks and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(compiled.params)
        for slot, field, value in zip(compiled.slots, self.fields, values, strict=True):
            params[slot] = field.get_db_prep_value(value, connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        model = compiled.compiler.klass_info["model"]
        found = []
        converted = compiled.compiler.apply_converters(rows, compiled.converters) if compiled.converters else rows
        for row in converted:
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


# --- writes -------------------------------------------------------------------------
# The statements below are written from the model's metadata once per shape and
# connection; every value goes through its field's `pre_save` / `get_db_prep_save`, as in
# `Model.save` and `QuerySet.update`. (No signals: nothing here listens to these models'.)

_Shape = tuple[Any, ...]


def _statements(alias: str) -> dict[_Shape, Any]:
    found: dict[_Shape, Any] | None = connections[alias].__dict__.get("_prepared_writes")
    if found is None:
        found = connections[alias].__dict__["_prepared_writes"] = {}
    return found


def _column(field: Field) -> str:
    return str(field.column)


def _column_fields(model: type[Model], names: Any) -> list[Field]:
    return [model._meta.get_field(name) for name in names]  # type: ignore[misc]  # concrete fields only


def rows_update(model: type[Model], where: dict[str, Any], values: dict[str, Any], *, using: str = "default") -> int:
    """`model.objects.filter(**where).update(**values)` for equality filters on concrete
    fields: the number of rows changed."""
    connection = connections[using]
    shape = ("update", model, tuple(where), tuple(values))
    statements = _statements(using)
    built = statements.get(shape)
    if built is None:
        quote = connection.ops.quote_name
        set_fields, where_fields = _column_fields(model, values), _column_fields(model, where)
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET "
            + ", ".join(f"{quote(_column(f))} = %s" for f in set_fields)
            + " WHERE "
            + " AND ".join(f"{quote(_column(f))} = %s" for f in where_fields)
        )
        built = statements[shape] = (sql, set_fields, where_fields)
    sql, set_fields, where_fields = built
    params = [f.get_db_prep_save(value, connection) for f, value in zip(set_fields, values.values(), strict=True)]
    params += [f.get_db_prep_value(value, connection) for f, value in zip(where_fields, where.values(), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def row_save(instance: Model, update_fields: Any, *, using: str = "default") -> None:
    """`instance.save(update_fields=...)` for an instance already stored (auto_now fields
    among them are set as `save` sets them)."""
    model = type(instance)
    names = list(dict.fromkeys(update_fields))
    values = {name: model._meta.get_field(name).pre_save(instance, False) for name in names}  # type: ignore[union-attr]
    if not rows_update(model, {model._meta.pk.attname: instance.pk}, values, using=using):
        raise DatabaseError("Save with update_fields did not affect any rows.")


def _on_conflict(model: type[Model], conflict: tuple[str, tuple[str, ...]] | None, quote: Any) -> str:
    if conflict is None:
        return ""
    unique, updated = conflict
    columns = [quote(_column(field)) for field in _column_fields(model, updated)]
    return (
        f" ON CONFLICT ({quote(_column(_column_fields(model, [unique])[0]))}) DO UPDATE SET "
        + ", ".join(f"{column} = EXCLUDED.{column}" for column in columns)
    )


def rows_insert(
    instances: list[M], *, conflict: tuple[str, tuple[str, ...]] | None = None, using: str = "default"
) -> None:
    """`QuerySet.bulk_create(instances)` for new instances of one model: one multi-row
    INSERT, the key read back with RETURNING when the database makes it. With
    `conflict=(unique field, update fields)`, an upsert, as `bulk_create`'s
    `update_conflicts` (`ON CONFLICT (...) DO UPDATE`, on SQLite and PostgreSQL alike)."""
    if not instances:
        return
    model = type(instances[0])
    connection = connections[using]
    batch = max(1, connection.ops.bulk_batch_size(list(model._meta.concrete_fields), instances))
    if len(instances) > batch:
        for start in range(0, len(instances), batch):
            rows_insert(instances[start : start + batch], conflict=conflict, using=using)
        return
    pk = model._meta.pk
    auto = pk is not None and pk.db_returning and instances[0].pk is None
    shape = ("insert", model, len(instances), auto, conflict)
    statements = _statements(using)
    built = statements.get(shape)
    if built is None:
        quote = connection.ops.quote_name
        fields = [f for f in model._meta.concrete_fields if not (auto and f is pk)]
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(_column(f)) for f in fields)}) VALUES "
            + ", ".join([row] * len(instances))
            + _on_conflict(model, conflict, quote)
            + (f" RETURNING {quote(_column(pk))}" if auto and pk is not None else "")
        )
        built = statements[shape] = (sql, fields)
    sql, fields = built
    params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for instance in instances for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if auto:
            for instance, (key,) in zip(instances, cursor.fetchall(), strict=True):
                instance.pk = key
    for instance in instances:
        instance._state.adding = False
        instance._state.db = using
