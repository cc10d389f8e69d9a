"""What every tracepay service needs and nothing else: serving a WSGI app, serialised
SQLite writes, and the helpers tests use to start real processes.

Services (gateway, sandbox platform, bridge, ledger, consumer) may import this package;
it imports none of them, and nothing here imports the ``tracepay`` top package.
"""
