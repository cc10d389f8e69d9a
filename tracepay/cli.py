"""The ``tracepay`` command: one entry point, a thin shell over each part's own commands.

Each package exposes its click commands in its ``cli`` module; this module only gathers
them, so ``tracepay --help`` lists the whole system.
"""

from __future__ import annotations

import importlib
import logging
import os

import click

from . import __version__

#: (module, attribute) of every sub-command. Imported lazily so that ``tracepay --help``
#: and one service's start-up do not import every other service (Kivy, in particular).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("tracepay.demo", "demo", "Run the whole system on free loopback ports."),
    "broker": ("tracepay.broker", "broker_command", "Run the MQTT broker with tracepay's config."),
    "sandbox-platform": ("sandbox_platform.cli", "command", "Run the sandbox payment platform."),
    "gateway": ("aggregation_gateway.cli", "gateway", "Run the aggregation gateway."),
    "device": ("aggregation_gateway.cli", "device", "Enrol, revoke and rotate terminals."),
    "bridge": ("ledger_bridge.cli", "bridge", "Run the ledger bridge and its trace API."),
    "ledger": ("ledger_bridge.cli", "ledger", "Verify and inspect the ledger."),
    "ledger-node": ("trace_ledger.node.cli", "ledger_node",
                    "Run one organisation's ledger node (follows the JetStream stream)."),
    "witness": ("trace_ledger.witness.cli", "witness",
                "Run an outside witness that cosigns the ledger's checkpoints."),
    "consumer": ("consumer_app.cli", "consumer", "Run the shopper-facing pages."),
    "terminal": ("pos_terminal.cli", "terminal", "Run a vendor terminal (window or headless)."),
    "nats": ("tracepay.nats_cluster", "nats_command", "Run the ledger's NATS JetStream cluster."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[name]
        command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="tracepay")
@click.option("--log-level", default=lambda: os.environ.get("TRACEPAY_LOG_LEVEL", "INFO"),
              show_default="INFO", help="Python logging level.")
def main(log_level: str) -> None:
    """tracepay: QR payment and trace for wet markets.

    \b
    Example:
        tracepay demo                       # everything, on free loopback ports
        tracepay demo --headless --sales 20 --json
        tracepay ledger verify --data-dir var/demo/bridge
    """
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    main()
