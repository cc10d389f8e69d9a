"""``tracepay terminal``: enrol, run the window, or run headless (the sales simulator).

A thin shell over ``pos_terminal.terminal``; every option is also described in
docs/terminal.md.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from .provisioning import (
    ProvisioningError,
    claim_enrolment,
    load_config,
    parse_enrolment_input,
    save_enrolment,
)

__all__ = ["terminal"]

log = logging.getLogger(__name__)


@click.command("terminal")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the enrolment, catalogue and outbox live.")
@click.option("--headless", is_flag=True, help="No window: run the sales simulator.")
@click.option("--enrol-code", help="First run: the manager's enrolment code, or the scanned "
              "claim URL <gateway>/v1/enrolments/<code>/claim.")
@click.option("--gateway-url", help="First run: the gateway that issued the enrolment code "
              "(in a window without --enrol-code: shown on the enrolment screen).")
@click.option("--simulate-sales", type=click.IntRange(0, 1_000_000), default=0,
              show_default=True, help="Headless: ring up this many random sales.")
@click.option("--interval-ms", type=click.IntRange(0, 3_600_000), default=0, show_default=True,
              help="Headless: pause between simulated sales.")
@click.option("--wait-results", type=click.FloatRange(0, 86_400), default=0.0,
              show_default=True, help="Headless: seconds to wait for every payment result.")
@click.option("--drain-timeout", type=click.FloatRange(0, 86_400), default=10.0,
              show_default=True, help="Headless: seconds to wait for the outbox to drain.")
@click.option("--seed", type=int, default=None, help="Headless: random seed for the sales.")
@click.option("--qr-format", type=click.Choice(["url", "emv"]), default=None,
              help="Store this terminal's QR format (URL on the gateway, or EMVCo).")
@click.option("--close-day", is_flag=True,
              help="Headless: afterwards, write today's Z report (PNG) and print its summary.")
@click.option("--force", is_flag=True, help="With --close-day: close even with unsent sales.")
@click.option("--report", type=click.Choice(["day", "week"]), default=None,
              help="Headless: sales by product and by hour, today or the last 7 days (JSON).")
@click.option("--csv-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --report: also write products-<period>-<date>.csv and hours-....csv.")
@click.option("--print", "print_report", is_flag=True,
              help="With --close-day: also print the Z report on the stall's printer "
                   "(printer in stall.json).")
@click.option("--scale", default="manual", show_default=True,
              help="Window: 'manual', 'simulated' or 'mettler:/dev/ttyUSB0'.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
              help="Window: first language (switchable at run time).")
@click.option("--fullscreen", is_flag=True, default=None, help="Window: vendor screen full screen.")
@click.option("--customer-display/--no-customer-display", default=None,
              help="Window: start the customer display window (default: on).")
@click.option("--geometry", default=None, help="Window: vendor window WxH[+X+Y].")
@click.option("--display-geometry", default=None, help="Window: customer display WxH[+X+Y].")
@click.option("--scanner", default=None,
              help="Window: serial barcode scanner device, e.g. /dev/ttyACM0 (a keyboard-wedge "
                   "scanner needs no option).")
def terminal(data_dir: Path, headless: bool, enrol_code: str | None, gateway_url: str | None,
             simulate_sales: int, interval_ms: int, wait_results: float, drain_timeout: float,
             seed: int | None, qr_format: str | None, close_day: bool, force: bool,
             print_report: bool, report: str | None, csv_dir: Path | None, scale: str, lang: str | None, fullscreen: bool | None,
             customer_display: bool | None, geometry: str | None,
             display_geometry: str | None, scanner: str | None) -> None:
    """Run a vendor terminal.

    \b
    Example:
        tracepay terminal --headless --data-dir var/t1 --enrol-code K7Q2 --gateway-url http://127.0.0.1:8000
        tracepay terminal --headless --data-dir var/t1 --simulate-sales 20 --wait-results 60
        tracepay terminal --headless --data-dir var/t1 --close-day
        tracepay terminal --headless --data-dir var/t1 --close-day --print
        tracepay terminal --headless --data-dir var/t1 --report week --csv-dir reports
        tracepay terminal --data-dir var/t1 --scale simulated
    """
    try:
        if headless or enrol_code is not None:
            _ensure_enrolled(data_dir, enrol_code, gateway_url)
        # else a window on a fresh data dir opens on its enrolment screen
        if qr_format:
            from .provisioning import update_config

            update_config(data_dir, qr_format=qr_format)
        if not headless:
            from pos_terminal.ui.app import run

            options = {"data_dir": str(data_dir), "scale": scale, "lang": lang,
                       "fullscreen": fullscreen, "customer_display": customer_display,
                       "geometry": geometry, "display_geometry": display_geometry,
                       "scanner": scanner, "gateway_url": gateway_url if enrol_code is None else None}
            run({name: value for name, value in options.items() if value is not None})
            return
        # With no sales to simulate, a headless run drains whatever the outbox still holds.
        _simulate(data_dir, simulate_sales, interval_ms, wait_results, drain_timeout, seed)
        if close_day:
            _close_day(data_dir, force, print_report)
        if report:
            _report(data_dir, report, csv_dir)
    except ProvisioningError as exc:
        raise click.ClickException(str(exc)) from exc


def _ensure_enrolled(data_dir: Path, enrol_code: str | None, gateway_url: str | None) -> None:
    if enrol_code is None:
        load_config(data_dir)  # fails with instructions when never enrolled
        return
    if not gateway_url and "://" not in enrol_code:
        raise click.UsageError("--enrol-code needs --gateway-url (or give the scanned claim URL)")
    gateway_url, code = parse_enrolment_input(enrol_code, gateway_url)
    try:
        config, _ = load_config(data_dir)
    except ProvisioningError:
        config = None
    if config is not None:
        raise click.UsageError(f"{data_dir} is already enrolled as {config.device_id}; "
                               "use another --data-dir for another terminal")
    save_enrolment(data_dir, claim_enrolment(gateway_url, code))


def _simulate(data_dir: Path, count: int, interval_ms: int, wait_results: float,
              drain_timeout: float, seed: int | None) -> None:
    from .simulator import simulate_sales
    from .terminal import Terminal

    with Terminal.open(data_dir) as term:
        simulate_sales(term, count, out=sys.stdout, interval_ms=interval_ms,
                       wait_results=wait_results, drain_timeout=drain_timeout, seed=seed)


def _close_day(data_dir: Path, force: bool, print_report: bool = False) -> None:
    from .printer import PrinterError
    from .terminal import Terminal, UnsentSales

    with Terminal.open(data_dir) as term:
        try:
            report = term.close_day(force=force)
            if print_report:
                from .counter import Counter

                counter = Counter(term)
                try:
                    counter.print_z_report(force=True)  # the same day, just closed
                finally:
                    counter.close()
        except UnsentSales as exc:
            click.echo(json.dumps({"event": "close_day_refused", "unsent": exc.count,
                                   "message": str(exc)}, ensure_ascii=False))
            sys.exit(3)
        except PrinterError as exc:
            raise click.ClickException(f"the Z report was saved to {report.path} but not "
                                       f"printed: {exc}") from exc
    click.echo(json.dumps({"event": "z_report", "path": str(report.path), **report.summary,
                           "printed": print_report}, ensure_ascii=False))


def _report(data_dir: Path, period: str, csv_dir: Path | None) -> None:
    from datetime import date

    from .sales_report import hours_csv, products_csv
    from .terminal import Terminal

    with Terminal.open(data_dir) as term:
        report = term.sales_report(period)
    written = []
    if csv_dir is not None:
        csv_dir.mkdir(parents=True, exist_ok=True)
        stamp = date.today().isoformat()
        for name, render in (("products", products_csv), ("hours", hours_csv)):
            path = csv_dir / f"{name}-{period}-{stamp}.csv"
            path.write_text(render(report), encoding="utf-8")
            written.append(str(path))
    click.echo(json.dumps({"event": "sales_report", **report, "csv": written},
                          ensure_ascii=False))
