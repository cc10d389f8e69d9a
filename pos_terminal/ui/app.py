"""Start the vendor screen (and with it the customer display): what ``tracepay terminal``
calls when it is not ``--headless``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .environment import LANG_ENV

__all__ = ["run", "UI_OPTIONS"]

#: Options ``run`` understands when given a mapping (CLI flags or a settings table).
UI_OPTIONS: dict[str, tuple[Any, str]] = {
    "data_dir": (None, "the enrolled terminal's data directory"),
    "lang": (None, "first language of the screens: zh or en (switchable at run time)"),
    "geometry": ("1024x700+0+0", "vendor window WIDTHxHEIGHT[+LEFT+TOP]"),
    "display_geometry": ("1024x600+1024+0", "customer display window geometry (7\" 1024x600)"),
    "fullscreen": (False, "vendor window full screen"),
    "customer_display": (True, "start the customer display process"),
    "scale": ("manual", "'manual' (keypad; or stall.json's scale), 'simulated', "
                         "'mettler:/dev/ttyUSB0', 'dahua|aclas:/dev/ttyX[:BAUD[:PARITY]]'"),
    "gateway_url": ("", "first run: the gateway address shown on the enrolment screen"),
    "scanner": (None, "serial barcode reader device (e.g. /dev/ttyACM0); wedge needs none"),
}


def _options(config_or_data_dir: Any) -> dict[str, Any]:
    if isinstance(config_or_data_dir, (str, os.PathLike)):
        given: Mapping[str, Any] = {"data_dir": config_or_data_dir}
    elif isinstance(config_or_data_dir, Mapping):
        given = config_or_data_dir
    else:  # a settings object with attributes
        given = {name: getattr(config_or_data_dir, name) for name in UI_OPTIONS
                 if hasattr(config_or_data_dir, name)}
    unknown = sorted(set(given) - set(UI_OPTIONS))
    if unknown:
        raise ValueError(f"unknown terminal UI option(s) {unknown}; known: {sorted(UI_OPTIONS)}")
    options = {name: default for name, (default, _) in UI_OPTIONS.items()}
    options.update({k: v for k, v in given.items() if v is not None})
    options["lang"] = options["lang"] or os.environ.get(LANG_ENV) or "zh"
    if not options["data_dir"]:
        raise ValueError("the terminal UI needs data_dir: the enrolled terminal's directory")
    if options["lang"] not in ("zh", "en"):
        raise ValueError(f"lang must be zh or en, not {options['lang']!r}")
    return options


def run(config_or_data_dir: Any) -> None:
    """Open the terminal in ``data_dir`` and run its windows until the vendor closes them.

    Accepts a data directory, a mapping of ``UI_OPTIONS`` or an object with those attributes.
    A directory with no enrolment opens on the enrolment screen; a damaged one raises
    ``ProvisioningError`` (never overwrite a key that may still be in use).
    """
    options = _options(config_or_data_dir)
    from .window_setup import configure_window

    terminal = _open_terminal(Path(options["data_dir"]))
    scale = _open_scale(_scale_spec(options["scale"], Path(options["data_dir"])))
    has_cjk = configure_window(options["geometry"], fullscreen=options["fullscreen"])
    from .vendor_app import VendorApp

    app = VendorApp(terminal, lang=options["lang"], has_cjk_font=has_cjk, scale=scale,
                    customer_display=options["customer_display"],
                    display_geometry=options["display_geometry"],
                    data_dir=options["data_dir"], gateway_url=options["gateway_url"],
                    scanner=options["scanner"])
    _stop_on_sigterm(app)
    try:
        app.run()
    finally:
        if app.bound_terminal is not None:
            app.bound_terminal.close()
        if scale is not None:
            scale.close()


def _open_terminal(data_dir: Path) -> Any:
    """The enrolled terminal, or None when nothing of an enrolment is there yet."""
    from ..provisioning import CONFIG_FILE, KEY_FILE
    from ..terminal import Terminal

    if not (data_dir / CONFIG_FILE).exists() and not (data_dir / KEY_FILE).exists():
        return None
    return Terminal.open(data_dir)


def _scale_spec(given: str, data_dir: Path) -> str:
    """The ``--scale`` given, else the stall's ``scale`` setting (protocol, baud, parity)."""
    if given != "manual":
        return given
    from ..stall_settings import load_stall_settings

    return load_stall_settings(data_dir).scale or given


def _open_scale(spec: str) -> Any:
    """None for manual entry: the keypad is the manual scale, one tap per digit."""
    if spec == "manual":
        return None
    from ..scales import open_scale

    return open_scale(spec)


def _stop_on_sigterm(app: Any) -> None:
    """SIGTERM (a service manager, a test) closes the windows cleanly: on_stop runs, the
    uplink disconnects and the customer display is told to go."""
    import signal

    from kivy.clock import Clock

    signal.signal(signal.SIGTERM, lambda *_: Clock.schedule_once(lambda dt: app.stop(), 0))


def main(argv: list[str] | None = None) -> None:
    """``python -m pos_terminal.ui.app DATA_DIR``: the screens without the CLI around them."""
    import argparse
    import logging

    parser = argparse.ArgumentParser(description="Run the vendor screen and customer display.")
    parser.add_argument("data_dir", help="the enrolled terminal's data directory")
    parser.add_argument("--scale", default="manual", help=UI_OPTIONS["scale"][1])
    parser.add_argument("--lang", choices=("zh", "en"), default=None)
    parser.add_argument("--gateway-url", default="", help=UI_OPTIONS["gateway_url"][1])
    parser.add_argument("--scanner", default=None, help=UI_OPTIONS["scanner"][1])
    parser.add_argument("--geometry", default=None, help=UI_OPTIONS["geometry"][1])
    parser.add_argument("--display-geometry", default=None,
                        help=UI_OPTIONS["display_geometry"][1])
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("TRACEPAY_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run({"data_dir": args.data_dir, "scale": args.scale, "lang": args.lang,
         "gateway_url": args.gateway_url, "scanner": args.scanner,
         "geometry": args.geometry, "display_geometry": args.display_geometry})


if __name__ == "__main__":
    main()
