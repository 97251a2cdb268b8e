"""`backorderctl plan chart` and GetDemandHistory (docs/spec.md §9) against the real services:
the history a chart plots is the demand placed and imported, the PNG is a real image, and the
command without matplotlib names the extra to install."""

from __future__ import annotations

import datetime as dt
import struct
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from services.ctl.plan_chart import chart_data
from tests.e2e.conftest import System
from tests.e2e.test_bad_input import field_violations
from tests.e2e.test_ctl import ctl, ctl_env
from tests.e2e.test_replenishment import plan_once
from tests.support.servers import Vhost, unique

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (after checking the signature)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, "not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


async def test_chart_plots_the_history_forecast_and_levels(
    system: System, vhost: Vhost, allocation: AllocationServiceStub, tmp_path: Path
) -> None:
    sku = unique("CHART")
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=sku, quantity=4)
    )
    today = dt.date.today()
    imported = {today - dt.timedelta(days=d): 3 + d % 4 for d in range(1, 41)}
    await allocation.ImportDemandHistory(
        alloc.ImportDemandHistoryRequest(
            sku=sku,
            days=[alloc.DemandDay(date=d.isoformat(), units=u) for d, u in imported.items()],
        )
    )
    await allocation.SetPlanningParams(
        alloc.SetPlanningParamsRequest(sku=sku, lead_time_days=5, review_period_days=2)
    )
    await plan_once(system, vhost)

    # The history: 60 days through today, imported days as imported, today the line placed.
    history = await allocation.GetDemandHistory(alloc.GetDemandHistoryRequest(sku=sku, days=60))
    days = [dt.date.fromisoformat(d.date) for d in history.days]
    assert days == [today - dt.timedelta(days=59 - i) for i in range(60)]
    expected = {**imported, today: 4}
    assert [d.units for d in history.days] == [expected.get(day, 0) for day in days]

    advice = (
        await allocation.GetReplenishment(alloc.GetReplenishmentRequest(sku=sku))
    ).replenishment
    data = chart_data(history, advice)
    assert data.days == days and data.demand == [expected.get(day, 0) for day in days]
    assert data.forecast_days[0] == today and len(data.forecast_days) == 5 + 2 + 1
    assert set(data.forecast) == {advice.forecast_daily_units} and data.forecast[0] > 0
    assert data.forecast_method == "SES"
    assert data.reorder_point == advice.reorder_point > data.safety_stock > 0
    assert data.available == -4 and data.refreshed

    out = tmp_path / "chart.png"
    drawn = ctl(system, "--json", "plan", "chart", sku, "--out", str(out), "--days", "60")
    assert drawn.code == 0, drawn.stderr
    shown = drawn.json_dict()
    assert shown["file"] == str(out) and shown["days"] == 60
    assert shown["demand_units"] == sum(expected.values())
    assert shown["reorder_point"] == pytest.approx(advice.reorder_point)
    width, height = png_size(out)
    assert (width, height) == (1000, 700)
    assert 10_000 < out.stat().st_size < 2_000_000

    unknown = ctl(system, "plan", "chart", unique("NOSUCH"), "--out", str(tmp_path / "x.png"))
    assert unknown.code == 3 and not (tmp_path / "x.png").exists()
    bad = ctl(system, "plan", "chart", sku, "--days", "0")
    assert bad.code == 2 and "--days" in bad.stderr


def test_chart_without_matplotlib_names_the_extra(system: System, tmp_path: Path) -> None:
    # As if matplotlib were not installed (a None entry makes its import fail).
    program = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from services.ctl.main import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    out = tmp_path / "never.png"
    done = subprocess.run(
        [sys.executable, "-c", program, "plan", "chart", "ANY", "--out", str(out)],
        env=ctl_env(system),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "backorder[chart]" in done.stderr and not out.exists()


async def test_demand_history_bad_input(allocation: AllocationServiceStub) -> None:
    sku = unique("HIST")
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=sku, quantity=2)
    )
    default = await allocation.GetDemandHistory(alloc.GetDemandHistoryRequest(sku=sku))
    assert len(default.days) == 365 and default.days[-1].units == 2
    for days in (-1, 1097):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await allocation.GetDemandHistory(alloc.GetDemandHistoryRequest(sku=sku, days=days))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(caught.value) == ["days"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await allocation.GetDemandHistory(alloc.GetDemandHistoryRequest(sku=unique("NOSUCH")))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await allocation.GetDemandHistory(alloc.GetDemandHistoryRequest(sku="no spaces"))
    assert field_violations(caught.value) == ["sku"]
