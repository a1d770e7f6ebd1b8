"""Message catalogs: extract, merge, fill English, and check that nothing is missing.

English msgids are the source text, so the English catalog translates each message to
itself (filled here); the Chinese one is written by people. `make translations` runs
`update`; the test suite runs `problems()` and fails on anything missing or fuzzy.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "booking" / "translations"
LOCALES = ("zh_Hans_CN", "en")
KEYWORDS = ["-k", "_l", "-k", "lazy_gettext"]
# Babel skips every folder whose name starts with "." or "_" unless told otherwise, which
# silently drops templates/_macros; keep this the same as the Makefile's `translations`.
IGNORE_DIRS = ["--ignore-dirs", ".* __pycache__ node_modules"]


def extract() -> Catalog:
    """The messages the code and templates use right now."""
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
            [
                sys.executable,
                "-m",
                "babel.messages.frontend",
                "extract",
                "-F",
                str(ROOT / "babel.cfg"),
                *KEYWORDS,
                *IGNORE_DIRS,
                "--no-location",
                "--sort-output",
                "-o",
                str(pot),
                ".",  # babel.cfg maps booking/ and templates/; dot-folders such as .venv are skipped
            ],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        with pot.open("rb") as handle:
            return read_po(handle)


def catalog_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def load(locale: str) -> Catalog:
    with catalog_path(locale).open("rb") as handle:
        return read_po(handle, locale=locale)


def _translated(message: object) -> bool:
    string = message.string  # type: ignore[attr-defined]
    if isinstance(string, tuple | list):
        return all(part.strip() for part in string)
    return bool(string and string.strip())


def problems() -> dict[str, list[str]]:
    """For each locale, the messages that are missing, untranslated or fuzzy."""
    wanted = [m for m in extract() if m.id]
    found: dict[str, list[str]] = {}
    for locale in LOCALES:
        catalog = load(locale)
        bad = []
        for message in wanted:
            key = message.id if isinstance(message.id, str) else message.id[0]
            have = catalog.get(message.id, context=message.context)  # pgettext messages have a context
            if have is None:
                bad.append(f"missing: {key}")
            elif have.fuzzy:
                bad.append(f"fuzzy: {key}")
            elif not _translated(have):
                bad.append(f"untranslated: {key}")
        found[locale] = bad
    return found


def fill_english() -> int:
    """English translates each message to its own msgid (plural forms: singular, plural)."""
    catalog = load("en")
    filled = 0
    for message in catalog:
        if not message.id or _translated(message):
            continue
        message.string = tuple(message.id) if isinstance(message.id, tuple | list) else message.id
        message.flags.discard("fuzzy")
        filled += 1
    with catalog_path("en").open("wb") as handle:
        write_po(handle, catalog, width=100, sort_output=True, omit_header=False)
    return filled


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "fill-english":
        print(f"filled {fill_english()} English messages")
    else:
        report = problems()
        for locale, items in report.items():
            print(f"{locale}: {len(items)} problems")
            for item in items[:50]:
                print("  ", item)
        sys.exit(1 if any(report.values()) else 0)
