"""The planning worker as real processes (docs/spec.md §9): `serve` starts it as a child
that loads the forecasting library while the gRPC server never does, and stops it when it
stops; `plan --once` refreshes every SKU and exits; PLANNING_WORKER=off starts none."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from services.common.security import ClientSecurity
from tests.support.processes import BIN, ServiceProcess
from tests.support.servers import Vhost, database_url, drop_database, unique


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def loaded(pid: int, library: str) -> bool:
    """Whether process `pid` has mapped a file of `library` (its compiled modules)."""
    return f"/{library}/" in Path(f"/proc/{pid}/maps").read_text()


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.fixture
def database() -> Iterator[str]:
    name = unique("bo_e2e_plan")
    yield name
    asyncio.run(drop_database(name))


def allocation(vhost: Vhost, database: str, tmp_path: Path, **env: str) -> ServiceProcess:
    return ServiceProcess(
        "allocation",
        {"ALLOCATION_DATABASE_URL": database_url(database), "AMQP_URL": vhost.url, **env},
        tmp_path / "allocation.log",
    )


def test_serve_runs_the_worker_as_a_child_and_never_loads_the_library(
    vhost: Vhost, database: str, tmp_path: Path
) -> None:
    service = allocation(vhost, database, tmp_path, PLANNING_WORKER="on", PLANNING_INTERVAL="1")
    service.start()
    try:
        assert service.process is not None
        serve_pid = service.process.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = [p for p in children(serve_pid) if " plan" in cmdline(p)]
            # The worker imports the library first, then takes the lock and says so.
            if (
                workers
                and loaded(workers[0], "statsforecast")
                and "planning worker holds the lock" in service.log_text()
            ):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(
                f"no planning worker loaded the library and took the lock:\n{service.log_tail()}"
            )
        [worker] = workers
        assert not loaded(serve_pid, "statsforecast")
        assert not loaded(serve_pid, "numpy")
        # Background work: the worker gives way to the server (docs/planning.md).
        assert os.getpriority(os.PRIO_PROCESS, worker) == 19
        assert os.sched_getscheduler(worker) == os.SCHED_IDLE
    finally:
        assert service.stop() == 0
    assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text()


def test_plan_once_refreshes_every_sku_and_worker_off_starts_none(
    vhost: Vhost, database: str, tmp_path: Path
) -> None:
    service = allocation(vhost, database, tmp_path)  # PLANNING_WORKER=off
    service.start()
    try:
        assert service.process is not None
        assert children(service.process.pid) == []

        with ClientSecurity().channel(service.grpc_addr) as channel:
            stub = AllocationServiceStub(channel)
            for i in range(3):
                stub.Allocate(
                    alloc.AllocateRequest(
                        order_id=unique("o"), line_id="1", sku=f"P{i}", quantity=2
                    )
                )
    finally:
        assert service.stop() == 0
    env = {**os.environ, "ALLOCATION_DATABASE_URL": database_url(database), "AMQP_URL": vhost.url}
    done = subprocess.run(
        [str(BIN / "backorder-allocation"), "plan", "--once"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()

    async def results() -> list[tuple[str, str, int]]:
        conn = await asyncpg.connect(database_url(database))
        try:
            rows = await conn.fetch(
                "select sku, forecast_method, history_days from planning_result order by sku"
            )
        finally:
            await conn.close()
        return [tuple(r) for r in rows]

    # Every SKU refreshed; none has a complete day of history yet (its one line is today's).
    assert asyncio.run(results()) == [("P0", "NONE", 0), ("P1", "NONE", 0), ("P2", "NONE", 0)]


def test_a_bad_planning_setting_stops_start_up(tmp_path: Path) -> None:
    env = {**os.environ, "PLANNING_TIME_ZONE": "Nowhere/Special"}
    done = subprocess.run(
        [str(BIN / "backorder-allocation"), "plan", "--once"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "PLANNING_TIME_ZONE" in done.stderr.decode()


def test_backtest_scores_each_method_on_held_out_days(database: str) -> None:
    env = {**os.environ, "ALLOCATION_DATABASE_URL": database_url(database)}
    migrate = [str(BIN / "backorder-allocation"), "migrate"]
    assert subprocess.run(migrate, env=env, capture_output=True, check=False).returncode == 0

    async def seed() -> None:
        conn = await asyncpg.connect(database_url(database))
        try:
            await conn.execute("insert into sku (sku) values ('FLAT'), ('RARE'), ('NEW')")
            # FLAT: 5 a day for 60 days; RARE: 4 every third day; NEW: one day only.
            await conn.execute(
                """insert into demand_day (sku, day, imported_units)
                   select 'FLAT', current_date - d, 5 from generate_series(0, 59) d
                   union all
                   select 'RARE', current_date - d, case when d % 3 = 0 then 4 else 0 end
                   from generate_series(0, 59) d
                   union all select 'NEW', current_date, 2"""
            )
        finally:
            await conn.close()

    asyncio.run(seed())
    done = subprocess.run(
        [str(BIN / "backorder-allocation"), "backtest", "--holdout-days", "14"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:]}
    assert set(rows) == {"SES", "CROSTON_SBA"}  # NEW is shorter than the holdout
    assert rows["SES"][0] == "1" and abs(float(rows["SES"][1])) < 0.01  # 5 a day, as seen
    bad = subprocess.run(
        [str(BIN / "backorder-allocation"), "backtest", "--holdout-days", "0"],
        env=env,
        capture_output=True,
        check=False,
    )
    assert bad.returncode == 2
