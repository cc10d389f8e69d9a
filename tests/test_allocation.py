"""FIFO mass balance: quantities are conserved, remainders carry over, shortfalls are flagged."""

from __future__ import annotations

from trace_ledger.rules.allocation import Draw, LineAllocation, Lot, allocate_line, check_allocation


def lot(lot_id, amount, at, remaining=None, product="cabbage", holder="stall", label=None):
    return Lot(lot_id, holder, product, "g", amount, amount if remaining is None else remaining,
               at, label)


def run(lots, amount, at=100, label=None, product="cabbage"):
    return allocate_line(lots, trade_id="s1", line=0, holder="stall", product=product,
                         measure="g", amount=amount, at_ms=at, label=label)


def test_one_sale_draws_oldest_first_across_purchases():
    allocation, changed = run([lot("b", 500, 20), lot("a", 300, 10)], 600)
    assert allocation.draws == (Draw("a", 300), Draw("b", 300))
    assert allocation.unmatched == 0
    assert {k: v.remaining for k, v in changed.items()} == {"a": 0, "b": 200}


def test_remainder_carries_over_to_the_next_sale():
    lots = {"a": lot("a", 1000, 10)}
    first, changed = run(lots.values(), 400)
    lots.update(changed)
    second, changed = run(lots.values(), 400)
    lots.update(changed)
    assert first.draws == (Draw("a", 400),) and second.draws == (Draw("a", 400),)
    assert lots["a"].remaining == 200


def test_selling_more_than_bought_is_flagged_unmatched():
    allocation, _ = run([lot("a", 300, 10)], 1000)
    assert allocation.draws == (Draw("a", 300),) and allocation.unmatched == 700


def test_lots_received_after_the_sale_or_of_other_products_are_not_used():
    lots = [lot("late", 500, 200), lot("tom", 500, 10, product="tomato"),
            lot("other", 500, 10, holder="someone")]
    allocation, changed = run(lots, 100, at=100)
    assert allocation.draws == () and allocation.unmatched == 100 and changed == {}


def test_a_named_lot_is_drawn_first():
    allocation, _ = run([lot("a", 300, 10), lot("b", 300, 20, label="FARM-B")], 400,
                        label="FARM-B")
    assert allocation.draws == (Draw("b", 300), Draw("a", 100))


def test_check_allocation_accepts_what_allocate_line_produced():
    lots = {"a": lot("a", 300, 10), "b": lot("b", 500, 20)}
    allocation, _ = run(lots.values(), 600)
    assert check_allocation(allocation, lots) is None
    assert LineAllocation.from_record(allocation.to_record()) == allocation


def test_check_allocation_refuses_what_does_not_add_up():
    lots = {"a": lot("a", 300, 10, remaining=100)}

    def alloc(draws, unmatched, amount=300, product="cabbage"):
        return LineAllocation("s1", 0, "stall", product, "g", amount, tuple(draws), unmatched)

    assert "!= line amount" in check_allocation(alloc([Draw("a", 100)], 100), lots)
    assert "exceeds its remaining" in check_allocation(alloc([Draw("a", 300)], 0), lots)
    assert "unknown lot" in check_allocation(alloc([Draw("zz", 100)], 200), lots)
    assert "not tomato" in check_allocation(alloc([Draw("a", 100)], 200, product="tomato"), lots)
    assert "positive" in check_allocation(alloc([Draw("a", 0)], 300), lots)
