"""The reference model of docs/spec.md §2 (the fill, cancels, fulfilments, shrinkage) written as
plainly as possible: tests replay operations through it and compare with the service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelLine:
    line_id: str
    quantity: int
    priority: int
    seq: int
    partial: bool
    reserved: int = 0
    fulfilled: int = 0
    cancelled: bool = False

    @property
    def backordered(self) -> int:
        return 0 if self.cancelled else self.quantity - self.reserved - self.fulfilled

    @property
    def rank(self) -> tuple[int, int]:
        return (-self.priority, self.seq)

    @property
    def status(self) -> str:
        if self.cancelled:
            return "CANCELLED"
        if self.fulfilled == self.quantity:
            return "FULFILLED"
        if self.fulfilled:
            return "PARTIALLY_FULFILLED"
        if self.reserved == self.quantity:
            return "RESERVED"
        return "PARTIALLY_RESERVED" if self.reserved else "BACKORDERED"


@dataclass(frozen=True)
class Decision:
    """One entry of the decision log: units given to a line (or, REVOKED, taken back)."""

    line_id: str
    quantity: int
    rule: str  # PARTIAL, WHOLE, WHOLE_AFTER_SKIP or REVOKED
    queue_position: int  # 1-based place among the waiting lines when given; 0 when revoked
    policy: str


class Model:
    def __init__(self) -> None:
        self.lines: dict[str, ModelLine] = {}
        self.free = 0
        self.supply = 0  # received + adjustments actually applied
        self.unmatched = 0
        self.policy = "STRICT"
        self.log: list[Decision] = []  # every decision, oldest first

    def waiting(self) -> list[ModelLine]:
        return sorted(
            (ln for ln in self.lines.values() if ln.backordered > 0), key=lambda x: x.rank
        )

    def fill(self) -> None:
        # Lines passed over (SKIP) or partly served stay in the queue ahead of the next one.
        ahead, skipped = 0, False
        for ln in self.waiting():
            if self.free <= 0:
                return
            if ln.backordered <= self.free:
                take = ln.backordered
                rule = "WHOLE_AFTER_SKIP" if skipped else "WHOLE"
            elif ln.partial:
                take, rule = self.free, "PARTIAL"
            elif self.policy == "STRICT":
                return
            else:
                skipped = True
                ahead += 1
                continue
            self.log.append(Decision(ln.line_id, take, rule, ahead + 1, self.policy))
            ahead += rule == "PARTIAL"
            ln.reserved += take
            self.free -= take

    def shrink(self, units: int) -> None:
        from_free = min(self.free, units)
        self.free -= from_free
        units -= from_free
        self.supply -= from_free
        held = sorted((ln for ln in self.lines.values() if ln.reserved), key=lambda x: x.rank)
        for ln in reversed(held):
            take = min(ln.reserved, units)
            if take:
                self.log.append(Decision(ln.line_id, take, "REVOKED", 0, self.policy))
            ln.reserved -= take
            units -= take
            self.supply -= take
        self.unmatched += units
