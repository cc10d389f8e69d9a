"""The orderer is woken when entries start waiting, not on every submit, and still cuts
every block on time: many single-trade submits (the bridge's writer sends one trade's
entries at a time) end up in one block cut by the timeout, and in the next one after it."""

from __future__ import annotations

import pytest

from service_base.testing import wait_until
from trace_ledger import Ledger, LedgerEntry


def entry(i: int) -> LedgerEntry:
    record = {"trade_id": f"t{i}", "amount_fen": 100 + i, "seller": "stall-7"}
    return LedgerEntry("trade", f"t{i}", record, [f"code-{i}", "stall-7"])


@pytest.mark.slow  # waits out two block timeouts
def test_single_submits_wake_the_orderer_once_per_block_and_blocks_are_still_cut(tmp_path):
    with Ledger.open(tmp_path, block_max=1000, block_timeout_s=2.0) as ledger:
        wakes = []
        notify_all = ledger._changed.notify_all
        ledger._changed.notify_all = lambda: (wakes.append(1), notify_all())[1]
        for i in range(40):
            assert ledger.submit([entry(i)])[0].status == "accepted"
        assert len(wakes) == 1  # the first entry starts the block's clock; the rest wait
        wait_until(lambda: ledger.head()["height"] == 1)
        assert ledger.block(1)["header"]["count"] == 40
        for i in range(40, 45):  # after the cut, the next entries wake it again
            ledger.submit([entry(i)])
        wait_until(lambda: ledger.head()["height"] == 2)
        assert ledger.head()["trades"] == 45 and ledger.block(2)["header"]["count"] == 5
