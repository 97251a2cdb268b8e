"""Group commit of Allocate (handlers/placing.py, `GroupCommit`): concurrent calls placed in
one batch, one statement and one transaction, each still answered on its own: a bad call,
a repeat, a refusal or a cap fails only itself; arrival order is rank order."""

from __future__ import annotations

import asyncio

import asyncpg

from bench import workload
from services.allocation import handlers
from services.allocation.adapters import placement
from services.allocation.adapters.placement import CustomerCapExceeded
from services.allocation.handlers import events as built_events
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from tests.integration.test_allocation_store import receipt, reserved_parts
from tests.integration.test_placement import COUNT, _queue_rows
from tests.support.servers import unique


async def _together(
    group: handlers.GroupCommit, pool: asyncpg.Pool, *cmds: handlers.Allocate
) -> list[handlers.Placed | BaseException]:
    """The calls started in one turn of the event loop: they arrive together."""
    return await asyncio.gather(
        *(handlers.allocate(pool, cmd, group=group) for cmd in cmds), return_exceptions=True
    )


def _placed(answers: list[handlers.Placed | BaseException]) -> list[handlers.Placed]:
    """The answers, every one a placed line."""
    assert all(isinstance(a, handlers.Placed) for a in answers), answers
    return [a for a in answers if isinstance(a, handlers.Placed)]


async def _transactions(pool: asyncpg.Pool, order_ids: list[str]) -> set[str]:
    """The transactions that wrote these orders' lines."""
    rows = await pool.fetch("select xmin::text from line where order_id = any($1)", order_ids)
    return {r[0] for r in rows}


async def test_a_batch_writes_what_placing_each_line_alone_writes_in_one_transaction(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, group = allocation_pool, handlers.GroupCommit()
    copied, placed = unique("BENCH"), unique("GROUP")
    await workload.place_waiting_lines(pool, copied, COUNT, order_prefix=copied)
    orders = [f"{placed}-{i}" for i in range(1, COUNT + 1)]
    answers = _placed(
        await _together(
            group,
            pool,
            *(
                handlers.Allocate(order, "1", placed, 1, priority=(i * 7) % 10)
                for i, order in enumerate(orders, start=1)
            ),
        )
    )
    # One transaction for all of them, and (priorities mixed) each band's rank is arrival
    # order: the same rows, counters and rank as placing the lines one by one.
    assert len(await _transactions(pool, orders)) == 1
    assert group.batches == 1 and group.batched_calls == COUNT
    bench = await _queue_rows(pool, copied, f"{copied}-")
    real = await _queue_rows(pool, placed, f"{placed}-")
    assert bench == real
    # Each caller got its own line and its place in the queue when it was placed: behind
    # every earlier arrival of its priority or higher.
    priorities = [(i * 7) % 10 for i in range(1, COUNT + 1)]
    expected = [sum(q >= p for q in priorities[: i + 1]) for i, p in enumerate(priorities)]
    assert [a.view.queue_position for a in answers] == expected
    assert [a.view.line.order_id for a in answers] == orders
    events = await pool.fetchval(
        "select count(*) from outbox where routing_key = 'line.backordered' and sku = $1", placed
    )
    assert events == COUNT


async def test_one_bad_call_fails_alone_the_rest_of_its_batch_is_placed(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, group = allocation_pool, handlers.GroupCommit()
    sku, other = unique("GB"), unique("GB")
    order_owned = unique("ord")
    await handlers.allocate_order(
        pool,
        handlers.AllocateOrder(order_owned, (handlers.OrderLine("1", sku, 1),)),
    )
    good = [unique("g") for _ in range(6)]
    answers = await _together(
        group,
        pool,
        handlers.Allocate(good[0], "1", sku, 1),
        handlers.Allocate(good[1], "1", sku, 0),  # bad quantity
        handlers.Allocate(good[2], "1", other, 2),
        handlers.Allocate(order_owned, "2", sku, 1),  # an AllocateOrder's order_id
        handlers.Allocate(good[3], "1", sku, 3),
        handlers.Allocate(good[4], "", other, 1),  # no line_id
        handlers.Allocate(good[5], "1", other, 1),
    )
    assert isinstance(answers[1], InvalidArgument) and answers[1].field == "quantity"
    assert isinstance(answers[3], AlreadyExists)
    assert isinstance(answers[5], InvalidArgument) and answers[5].field == "line_id"
    placed = _placed([answers[i] for i in (0, 2, 4, 6)])
    placed_orders = [good[0], good[2], good[3], good[5]]
    assert [a.view.line.order_id for a in placed] == placed_orders
    assert [a.view.queue_position for a in placed] == [2, 1, 3, 2]
    # The good ones in one transaction; nothing written for the bad ones.
    assert len(await _transactions(pool, placed_orders)) == 1
    written = await pool.fetchval(
        "select count(*) from line where order_id = any($1) or (order_id = $2 and line_id = '2')",
        [good[1], good[4]],
        order_owned,
    )
    assert written == 0


async def test_the_same_key_twice_in_one_batch_and_again_later(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, group = allocation_pool, handlers.GroupCommit()
    sku, order = unique("GD"), unique("d")
    first, again, other_content, neighbour = await _together(
        group,
        pool,
        handlers.Allocate(order, "1", sku, 2),
        handlers.Allocate(order, "1", sku, 2),
        handlers.Allocate(order, "1", sku, 5),
        handlers.Allocate(unique("n"), "1", sku, 1),
    )
    assert isinstance(first, handlers.Placed) and not first.repeated
    assert isinstance(again, handlers.Placed) and again.repeated
    assert again.view.line.key == first.view.line.key
    assert isinstance(other_content, AlreadyExists)
    assert isinstance(neighbour, handlers.Placed) and neighbour.view.queue_position == 2
    # Across batches: the same answer again, the line placed once.
    later = await _together(group, pool, handlers.Allocate(order, "1", sku, 2))
    assert isinstance(later[0], handlers.Placed) and later[0].repeated
    assert later[0].view.line.key == first.view.line.key
    assert await pool.fetchval("select count(*) from line where order_id = $1", order) == 1


async def test_a_cap_crossed_inside_one_batch_refuses_the_customers_second_line(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, group = allocation_pool, handlers.GroupCommit()
    sku = unique("GC")
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, max_units_per_customer=5))
    first, second, someone_else = await _together(
        group,
        pool,
        handlers.Allocate(unique("c"), "1", sku, 3, customer_id="carol"),
        handlers.Allocate(unique("c"), "1", sku, 3, customer_id="carol"),
        handlers.Allocate(unique("c"), "1", sku, 3, customer_id="dave"),
    )
    assert isinstance(first, handlers.Placed)
    assert isinstance(second, CustomerCapExceeded) and second.held == 3
    assert isinstance(someone_else, handlers.Placed)
    held = await pool.fetchval(
        "select sum(backordered) from line where sku = $1 and customer_id = 'carol'", sku
    )
    assert held == 3


async def test_free_units_go_in_arrival_order_within_a_batch(
    allocation_pool: asyncpg.Pool,
) -> None:
    """Lines the batch cannot only queue (the SKU has free units) take the full path one
    after the other in arrival order: the first two arrivals take the two free units, as
    they would one call at a time, and the rest wait ranked by priority, then arrival."""
    pool, group = allocation_pool, handlers.GroupCommit()
    sku = unique("GF")
    await handlers.stock_received(pool, receipt(sku, 2))
    priorities = (0, 1, 0, 1, 0)
    orders = [unique("f") for _ in priorities]
    answers = _placed(
        await _together(
            group,
            pool,
            *(
                handlers.Allocate(o, "1", sku, 1, priority=p)
                for o, p in zip(orders, priorities, strict=True)
            ),
        )
    )
    assert [a.view.line.reserved for a in answers] == [1, 1, 0, 0, 0]
    # The first two took the free units whole with nobody ahead: reserved by the batch's
    # statement itself, in the batch's one transaction.
    assert len(await _transactions(pool, orders)) == 1
    waiting = await pool.fetch(
        "select order_id from line where sku = $1 and backordered > 0"
        " order by priority desc, placed_at, id",
        sku,
    )
    assert [r[0] for r in waiting] == [orders[3], orders[2], orders[4]]


async def test_a_refusal_by_policy_fails_only_its_call(allocation_pool: asyncpg.Pool) -> None:
    pool, group = allocation_pool, handlers.GroupCommit()
    strict, open_ = unique("GP"), unique("GP")
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(strict, backorders_accepted=False))
    refused, placed = await _together(
        group,
        pool,
        handlers.Allocate(unique("p"), "1", strict, 1),
        handlers.Allocate(unique("p"), "1", open_, 1),
    )
    assert isinstance(refused, FailedPrecondition)
    assert isinstance(placed, handlers.Placed) and placed.view.queue_position == 1


async def test_a_backorder_limit_crossed_inside_one_batch_refuses_the_line_over_it(
    allocation_pool: asyncpg.Pool,
) -> None:
    """The guard of each line of a batch counts the units the batch queued before it in the
    same SKU, as placing them one by one would."""
    pool, group = allocation_pool, handlers.GroupCommit()
    limited, other = unique("GL"), unique("GL")
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(limited, backorder_limit=5))
    first, second, over, elsewhere = await _together(
        group,
        pool,
        handlers.Allocate(unique("l"), "1", limited, 3),
        handlers.Allocate(unique("l"), "1", limited, 2),
        handlers.Allocate(unique("l"), "1", limited, 1),
        handlers.Allocate(unique("l"), "1", other, 4),
    )
    assert isinstance(first, handlers.Placed) and first.view.queue_position == 1
    assert isinstance(second, handlers.Placed) and second.view.queue_position == 2
    assert isinstance(over, FailedPrecondition) and "over its limit of 5" in str(over)
    assert isinstance(elsewhere, handlers.Placed) and elsewhere.view.queue_position == 1
    backordered = await pool.fetchval("select backordered_units from sku where sku = $1", limited)
    assert backordered == 5


async def test_a_refused_line_among_one_skus_full_path_lines_undoes_only_itself(
    allocation_pool: asyncpg.Pool,
) -> None:
    """The lines of a SKU with free units go through the full path in one transaction; a
    line refused there (over the backorder limit) leaves nothing behind, not even its
    events, and the lines after it are placed as if it never came."""
    pool, group = allocation_pool, handlers.GroupCommit()
    sku = unique("GL")
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, backorder_limit=2))
    await handlers.stock_received(pool, receipt(sku, 1))
    orders = [unique("l") for _ in range(3)]
    first, over, last = await _together(
        group,
        pool,
        handlers.Allocate(orders[0], "1", sku, 1),
        handlers.Allocate(orders[1], "1", sku, 3),  # 3 backordered > limit 2
        handlers.Allocate(orders[2], "1", sku, 2),
    )
    assert isinstance(first, handlers.Placed) and first.view.line.reserved == 1
    assert isinstance(over, FailedPrecondition) and "limit of 2" in str(over)
    assert isinstance(last, handlers.Placed)
    assert (last.view.line.backordered, last.view.queue_position) == (2, 1)
    summary = await handlers.get_sku_summary(pool, sku)
    assert (summary.sku.backordered_units, summary.sku.waiting_lines) == (2, 1)
    events = await pool.fetch("select routing_key from outbox where sku = $1 order by id", sku)
    assert [e[0] for e in events] == ["line.reserved", "line.backordered"]
    assert await pool.fetchval("select count(*) from line where order_id = $1", orders[1]) == 0


async def test_a_batch_that_fails_as_a_whole_answers_each_call_on_its_own(
    allocation_pool: asyncpg.Pool,
) -> None:
    """A key being placed by another transaction (a replica) when the batch places it: the
    batch's insert waits for it, and fails on the unique key once it commits. The batch
    writes nothing then; each of its calls is placed on its own and answered."""
    pool, group = allocation_pool, handlers.GroupCommit()
    taken, other_sku = unique("GX"), unique("GY")
    key, neighbour = unique("x"), unique("x")
    request = placement.LineRequest(key, "1", taken, 1, 0, False, "")
    async with pool.acquire() as conn:
        elsewhere = conn.transaction()
        await elsewhere.start()
        await placement.queue_line(
            conn, request, built_events.queued_event(request), reserved_parts()
        )
        batch = asyncio.ensure_future(
            _together(
                group,
                pool,
                handlers.Allocate(key, "1", other_sku, 1),
                handlers.Allocate(neighbour, "1", other_sku, 1),
            )
        )
        waiting = (
            "select count(*) from pg_stat_activity where datname = current_database()"
            " and wait_event_type = 'Lock' and query like '%queue_lines%'"
        )
        while not await pool.fetchval(waiting):
            assert not batch.done()
            await asyncio.sleep(0.01)
        await elsewhere.commit()
    reused, placed = await batch
    assert group.batches == 1
    assert isinstance(reused, AlreadyExists)
    assert isinstance(placed, handlers.Placed) and placed.view.queue_position == 1
    rows = await pool.fetch("select sku from line where order_id = any($1)", [key, neighbour])
    assert sorted(r[0] for r in rows) == sorted([taken, other_sku])
