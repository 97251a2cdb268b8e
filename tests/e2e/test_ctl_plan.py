"""backorderctl plan (docs/spec.md §9) against the real services: import a CSV of history,
set parameters, refresh, show the advice and list the suggestions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from services.ctl.app import USAGE, CommandFailed
from services.ctl.plan import demand_days
from tests.e2e.conftest import System
from tests.e2e.test_ctl import ctl
from tests.e2e.test_replenishment import plan_once
from tests.support.servers import Vhost, unique


async def test_plan_commands_end_to_end(system: System, vhost: Vhost, tmp_path: Path) -> None:
    sku = unique("CTLPLAN")
    placed = ctl(system, "lines", "allocate", unique("o"), "1", sku, "8")
    assert placed.code == 0, placed.stderr
    today = dt.date.today()
    csv = tmp_path / "history.csv"
    csv.write_text(
        "date,units\n"
        + "".join(f"{today - dt.timedelta(days=30 - i)},{5 + i % 3}\n" for i in range(28))
    )
    imported = ctl(system, "--json", "plan", "import", sku, str(csv))
    assert imported.code == 0, imported.stderr
    assert imported.json() == {"sku": sku, "days_imported": 28}
    params = ctl(
        system, "--json", "plan", "params", sku, "--lead-time-days", "3", "--pack-size", "6"
    )
    assert params.code == 0, params.stderr
    assert params.json_dict()["lead_time_days"] == 3 and params.json_dict()["pack_size"] == "6"
    await plan_once(system, vhost)
    shown = ctl(system, "--json", "plan", "show", sku)
    assert shown.code == 0, shown.stderr
    advice = shown.json_dict()
    assert advice["forecast_method"] == "FORECAST_METHOD_SES"
    assert int(advice["available"]) == -8
    assert int(advice["suggested_order_quantity"]) % 6 == 0
    people = ctl(system, "plan", "show", sku)
    assert "SES" in people.stdout
    listed = ctl(system, "--json", "plan", "list", "--limit", "1000")
    assert listed.code == 0, listed.stderr
    assert sku in [row["sku"] for row in listed.json_rows()]
    bad = ctl(system, "plan", "params", sku, "--service-level", "0.2")
    assert bad.code == 4 and "service_level" in bad.stderr


def test_bad_csv_lines_are_named() -> None:
    assert [d.units for d in demand_days(["date,units", "2026-01-01,3", "", "2026-01-02, 0"])] == [
        3,
        0,
    ]
    assert demand_days(["2026-01-01,-1"]) == [alloc.DemandDay(date="2026-01-01", units=-1)]
    for lines, number in ((["2026-01-01;3"], 1), (["2026-01-01,3", "oops"], 2)):
        with pytest.raises(CommandFailed, match=f"line {number}") as caught:
            demand_days(lines)
        assert caught.value.code == USAGE
