"""One organisation's ledger node: it follows the transaction stream through its own
durable JetStream consumer, validates every entry itself, cuts one block per stream
message, signs it with its own key only, and serves its own read API.

``chain.NodeChain`` is the block rule over the node's store, ``history.History`` the node's
own view of committed lots and devices, ``follower`` the JetStream consumer loop, ``api``
the HTTP read API and ``cli`` the ``tracepay ledger-node`` command.
"""
