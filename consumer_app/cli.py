"""``tracepay consumer``: serve the shopper pages with a production WSGI server."""

from __future__ import annotations

import click

from market_protocol.settings import SettingsError, load_settings

from .settings import SERVICE, SETTINGS

__all__ = ["consumer"]


@click.command("consumer")
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="TCP port [default: 8400].")
@click.option("--gateway-url", default=None, help="Aggregation gateway base URL.")
@click.option("--bridge-url", default=None, help="Ledger bridge base URL.")
@click.option("--public-url", default=None,
              help="This app's public base URL, printed in QR codes [default: request URL].")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="TOML settings file ([consumer] table).")
@click.option("--workers", type=int, default=None, help="WSGI worker processes [default: 1].")
def consumer(host: str | None, port: int | None, gateway_url: str | None,
             bridge_url: str | None, public_url: str | None, config_file: str | None,
             workers: int | None) -> None:
    """Serve the shopper pages: pay hand-off, receipt, trace, stall stock, scan.

    \b
    Example:
        tracepay consumer --port 8400 --gateway-url http://127.0.0.1:8100 \\
            --bridge-url http://127.0.0.1:8300
    """
    overrides = {"host": host, "port": port, "gateway_url": gateway_url,
                 "bridge_url": bridge_url, "public_url": public_url, "workers": workers}
    try:
        settings = load_settings(SETTINGS, SERVICE, config_file=config_file, overrides=overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    if settings["workers"] < 1:
        raise click.UsageError("--workers must be at least 1")

    from service_base.serving import serve_wsgi

    from .app import create_app

    # The resolved settings travel to each worker explicitly: a worker must not re-read the
    # environment and disagree with what was printed here.
    resolved = {name: settings[name] for name in settings}
    click.echo(f"tracepay consumer on http://{settings['host']}:{settings['port']} "
               f"(gateway {settings['gateway_url']}, bridge {settings['bridge_url']})")
    serve_wsgi(lambda: create_app(resolved), settings["host"], settings["port"],
               workers=settings["workers"])
