"""The allocation database's rows as domain types: the column lists the adapters select
and the functions mapping a row to a `Sku` or a `Line`. Shared by the aggregate modules
(skus, lines, queue, inbound, reservations).

Everything that changes a SKU's units or queue runs with its `sku` row locked
(`skus.lock_sku`), which serialises fills of one SKU across any number of processes while
other SKUs go on. The database key of a line is the column `id`; in Python it is `key`
(`line_id` is the client's id of the line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeAlias

import asyncpg

from services.allocation.domain.fill import FillPolicy, LocationStrategy
from services.allocation.domain.model import Line, LineStatus, Sku

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool

SKU_FIELDS = tuple(f.name for f in fields(Sku))
SKU_COLUMNS = ", ".join(SKU_FIELDS)
# The columns of a Line, in its field order (`key` is the column `id`).
LINE_FIELDS = tuple(f.name for f in fields(Line))
_LINE_SQL = tuple("id" if name == "key" else name for name in LINE_FIELDS)
LINE_COLUMNS = ", ".join(_LINE_SQL)


def line_columns(alias: str) -> str:
    """LINE_COLUMNS of table alias `alias`."""
    return ", ".join(f"{alias}.{c}" for c in _LINE_SQL)


def sku_from(row: Mapping[str, Any], prefix: str = "") -> Sku:
    """The Sku of a row holding SKU_COLUMNS (named `prefix` + column)."""
    values = {name: row[prefix + name] for name in SKU_FIELDS}
    values["fill_policy"] = FillPolicy(values["fill_policy"])
    values["location_strategy"] = LocationStrategy(values["location_strategy"])
    return Sku(**values)


def line_from(row: Mapping[str, Any]) -> Line:
    """The Line of a row holding LINE_COLUMNS."""
    values = {name: row[column] for name, column in zip(LINE_FIELDS, _LINE_SQL, strict=True)}
    values["status"] = LineStatus(values["status"])
    if values["locations"] is not None:
        values["locations"] = tuple(values["locations"])
    return Line(**values)


# 1-based place of waiting line `l` in its SKU's queue: waiting lines of higher priority
# (at most 9 counter rows) + waiting lines ahead in its own priority band, which are the
# band's buckets of earlier arrivals (counter rows) + the lines of its own bucket that
# arrived before it (an index range of at most one bucket). Migration 0004 explains it.
POSITION = """case when l.backordered > 0 then 1
    + (select coalesce(sum(q.waiting_lines), 0)::bigint from sku_queue q
       where q.sku = l.sku and q.priority > l.priority)
    + (select coalesce(sum(b.waiting_lines), 0)::bigint from sku_queue_bucket b
       where b.sku = l.sku and b.priority = l.priority
         and b.bucket < l.sku_seq / queue_bucket_size())
    + (select count(*) from line a
       where a.sku = l.sku and a.priority = l.priority and a.backordered > 0
         and a.sku_seq >= l.sku_seq / queue_bucket_size() * queue_bucket_size()
         and a.sku_seq < l.sku_seq)
    else 0 end::bigint"""


def filters(equal: Mapping[str, object]) -> tuple[str, list[object]]:
    """`col = $n and ...` for the given (non-None) values: a plan per filter combination,
    so each can use its index (column names are ours, never the client's)."""
    given = [(column, value) for column, value in equal.items() if value is not None]
    where = "".join(f"{column} = ${i} and " for i, (column, _) in enumerate(given, 1))
    return where, [value for _, value in given]


# Where waiting line `l` holds and shipped units (repeatable/allocations.sql), as records
# (location_id, reserved, fulfilled); null for a line with none (no lookup at all).
ALLOCATIONS = """case when l.reserved + l.fulfilled > 0 then
    (select array_agg((a.location_id, a.reserved, a.fulfilled)) from line_allocations(l.id) a)
    end"""
