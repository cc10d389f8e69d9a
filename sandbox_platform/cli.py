"""``tracepay sandbox-platform``: serve the platform and run its one notifier."""

from __future__ import annotations

import logging

import click

from service_base.serving import serve_wsgi

from .app import create_app, open_state
from .notifier import Notifier
from .notify_schedule import describe_schedule
from .settings import resolve_settings

__all__ = ["command"]

log = logging.getLogger(__name__)


@click.command("sandbox-platform")
@click.option("--host", default=None, help="Interface to listen on [127.0.0.1].")
@click.option("--port", type=int, default=None, help="TCP port [8510].")
@click.option("--data-dir", default=None, help="SQLite file and platform key live here.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="TOML settings file ([sandbox_platform] section).")
@click.option("--notify-schedule", default=None,
              help="Seconds before each notification attempt, e.g. 0,1,2,4,8,15,30 "
                   "(the default), or 'wechat' / 'alipay' for their published schedules.")
@click.option("--public-url", default=None,
              help="Base URL of the checkout pages (default: the request's host).")
@click.option("--order-ttl", "order_ttl_seconds", type=int, default=None,
              help="Seconds an unpaid order stays payable [900].")
@click.option("--fee-rate", default=None, help="Fee rate for statements [0.006].")
@click.option("--workers", type=int, default=None, help="HTTP worker processes [1].")
@click.option("--allow-faults", is_flag=True, default=None,
              help="Let tests stage failures (POST /sandbox/faults). Never outside tests.")
def command(host: str | None, port: int | None, data_dir: str | None, config_file: str | None,
            notify_schedule: str | None, public_url: str | None,
            order_ttl_seconds: int | None, fee_rate: str | None, workers: int | None,
            allow_faults: bool | None) -> None:
    """Run the sandbox payment platform.

    HTTP is served by waitress (or granian with --workers > 1); notifications are sent
    by one background loop in this process only, whatever the number of workers.

    \b
    Example:
        tracepay sandbox-platform --port 8510 --data-dir var/platform
        tracepay sandbox-platform --notify-schedule wechat
    """
    try:
        settings = resolve_settings(
            {"host": host, "port": port, "data_dir": data_dir, "notify_schedule": notify_schedule,
             "public_url": public_url, "order_ttl_seconds": order_ttl_seconds,
             "fee_rate": fee_rate, "workers": workers, "allow_faults": allow_faults},
            config_file=config_file)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    state = open_state(settings)
    notifier = Notifier(state.store, state.key, settings["notify_schedule"],
                        timeout=settings["notify_timeout_seconds"]).start()
    log.info("sandbox platform on http://%s:%s (data %s, notifications: %s)",
             settings["host"], settings["port"], settings["data_dir"],
             describe_schedule(settings["notify_schedule"]))
    try:
        serve_wsgi(lambda: create_app(settings), settings["host"], settings["port"],
                   workers=settings["workers"], threads=settings["threads"])
    finally:
        notifier.stop()


if __name__ == "__main__":
    command()
