"""The plan of a ship-complete order's completion step in one SKU (docs/spec.md §10), pure.

The order's lines may take only free units that no higher-ranked waiting line could take,
and a waiting line competes only for units at the locations it can take from (docs/spec.md
§8.A). Put as flows: the higher-ranked lines could take F units of the free units now (the
most a transport of free units to them can carry, each line only from its own locations);
the order completes in the SKU when the free units can carry every unit its lines lack and
still F to those lines — their maximum flow together is F plus the order's units. Then no
higher-ranked line loses a unit it could have taken."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

# A demand: (units, the locations it may take from; None: any).
Demand = tuple[int, frozenset[str] | None]


@dataclass(frozen=True)
class Take:
    """Units a line of the order takes at a location."""

    line: int  # index in the order's lines
    location_id: str
    units: int


def max_flow(
    demands: Sequence[Demand], supply: dict[str, int], order: Sequence[str]
) -> tuple[int, list[dict[str, int]]]:
    """The most units the supply can carry to the demands (each from its own locations), and
    one such transport: for each demand, units by location. Augmenting paths, shortest
    first, locations tried in `order` (a small graph: demands are grouped by location set)."""
    locs = [loc for loc in order if supply.get(loc, 0) > 0]
    n = len(demands)
    flow = [dict.fromkeys(locs, 0) for _ in range(n)]
    left = [units for units, _ in demands]  # what each demand still lacks
    spare = {loc: supply[loc] for loc in locs}  # what each location still has
    allowed = [[loc for loc in locs if where is None or loc in where] for _, where in demands]
    total = 0
    while True:
        # BFS from every demand that still lacks units to a location with spare units, over
        # demand -> allowed location, and location -> a demand already taking from it (which
        # may then move units elsewhere).
        prev: dict[tuple[str, object], tuple[str, object] | None] = {}
        queue: deque[tuple[str, object]] = deque()
        for i in range(n):
            if left[i] > 0:
                prev[("d", i)] = None
                queue.append(("d", i))
        end: tuple[str, object] | None = None
        while queue and end is None:
            kind, node = queue.popleft()
            if kind == "d":
                assert isinstance(node, int)
                for loc in allowed[node]:
                    if ("l", loc) not in prev:
                        prev[("l", loc)] = (kind, node)
                        if spare[loc] > 0:
                            end = ("l", loc)
                            break
                        queue.append(("l", loc))
            else:
                for i in range(n):
                    if ("d", i) not in prev and flow[i].get(str(node), 0) > 0:
                        prev[("d", i)] = (kind, node)
                        queue.append(("d", i))
        if end is None:
            return total, flow
        # The path's bottleneck, then push it.
        path: list[tuple[str, object]] = []
        step: tuple[str, object] | None = end
        while step is not None:
            path.append(step)
            step = prev[step]
        path.reverse()  # demand, location, demand, location, ...
        first = path[0][1]
        assert isinstance(first, int)
        push = min(left[first], spare[str(end[1])])
        for k in range(1, len(path) - 1, 2):  # location -> demand edges run backwards
            back = path[k + 1][1]
            assert isinstance(back, int)
            push = min(push, flow[back][str(path[k][1])])
        for k in range(0, len(path) - 1, 2):
            src, loc = path[k][1], str(path[k + 1][1])
            assert isinstance(src, int)
            flow[src][loc] += push
            if k + 2 < len(path):
                j = path[k + 2][1]
                assert isinstance(j, int)
                flow[j][loc] -= push
        left[first] -= push
        spare[str(end[1])] -= push
        total += push


def plan(
    ahead: Sequence[Demand],
    lines: Sequence[Demand],
    free: dict[str, int],
    order: Sequence[str],
) -> list[Take] | None:
    """Where the order's `lines` (units each lacks, its locations) take their units in one
    SKU, given the free units by location (`order`: the locations in fill order) and the
    higher-ranked waiting lines `ahead`; None when the lines cannot all be served in full
    while those lines can still take all they could.

    One answer, whatever the search: line after line, location after location in fill order,
    each line takes the most units it can there while the rest of the order can still be
    served that way (in fill order this is every unit a location has, unless a line ahead
    needs them)."""
    could_take, _ = max_flow(ahead, free, order)
    left = dict(free)
    takes: list[Take] = []
    for index, (units, where) in enumerate(lines):
        mine = [loc for loc in order if where is None or loc in where]
        later = list(lines[index + 1 :])
        rest = sum(u for u, _ in later)
        for k, loc in enumerate(mine):
            if not units:
                break
            most = min(left.get(loc, 0), units)
            if _serves(most, loc, left, ahead, (units, mine[k + 1 :]), later, order, could_take):
                taken = most
            else:
                # A transport that serves everything, this line from here on; the units it
                # takes here can be taken (the amounts that can form an interval).
                total, flow = max_flow([*ahead, (units, frozenset(mine[k:])), *later], left, order)
                if total < could_take + units + rest:
                    return None
                low, high = flow[len(ahead)].get(loc, 0), most
                while high - low > 1:
                    middle = (low + high) // 2
                    fits = _serves(
                        middle, loc, left, ahead, (units, mine[k + 1 :]), later, order, could_take
                    )
                    low, high = (middle, high) if fits else (low, middle)
                taken = low
            if taken:
                takes.append(Take(index, loc, taken))
                left[loc] -= taken
                units -= taken
        if units:
            return None
    return takes


def _serves(
    x: int,
    loc: str,
    left: dict[str, int],
    ahead: Sequence[Demand],
    line: tuple[int, Sequence[str]],
    later: Sequence[Demand],
    order: Sequence[str],
    could_take: int,
) -> bool:
    """Whether a line that lacks `line[0]` units, taking `x` of them at `loc`, the rest only
    at its locations `line[1]` after it, leaves an order that can still be served in full
    with the lines ahead taking `could_take`."""
    units, after = line
    supply = {**left, loc: left.get(loc, 0) - x}
    demands = [*ahead, (units - x, frozenset(after)), *later]
    wanted = units - x + sum(u for u, _ in later)
    return max_flow(demands, supply, order)[0] == could_take + wanted
