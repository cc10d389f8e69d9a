"""The pure rules every ledger node runs on a transaction before admitting it: the trade
contract (schema, gateway signature, amounts, device) and FIFO mass balance. Pure, so the
bridge (which proposes) and each organisation's node (which decides) run the same code."""
