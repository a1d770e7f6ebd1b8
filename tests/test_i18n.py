"""Two languages: complete catalogs, no user-facing text outside _(), and the language choice."""

from __future__ import annotations

import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment

from tools.catalogs import problems

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LETTERS = re.compile(r"[A-Za-z\u3400-\u9fff]")
# Words that are the same in every language, or name a language in itself (".ics": the file type).
ALLOWED = {"中文", "English", "iCal", "CSV", "URL", "webcal", "Google", "Outlook", "Apple", "HTTPS", "OK", "×", ".ics"}
USER_FACING_ATTRIBUTES = {
    "title",
    "alt",
    "placeholder",
    "aria-label",
    "aria-description",
    "label",
    "data-confirm",
    "data-copied-label",  # member.js shows it on the copy button
}


def test_catalogs_are_complete_and_not_fuzzy():
    found = problems()
    assert found == {"zh_Hans_CN": [], "en": []}


class TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in USER_FACING_ATTRIBUTES and value:
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.texts.append(data)


ENV = Environment(extensions=["jinja2.ext.i18n"])  # noqa: S701 - only lexes templates, renders nothing
JINJA_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
OPEN_ATTRIBUTE = re.compile(r"<[A-Za-z][^<>]*?\s([A-Za-z_:][-\w:.]*)\s*=\s*(\"[^\"]*|'[^']*)$", re.DOTALL)


def _tag(tokens: list[tuple[int, str, str]], start: int) -> list[str]:
    """The words of the `{% … %}` tag that begins at token `start`."""
    words = []
    for _, kind, value in tokens[start + 1 :]:
        if kind == "block_end":
            break
        if kind != "whitespace":
            words.append(value)
    return words


def _blocks(source: str) -> list[tuple[str, int, int]]:
    """Macros and block `{% set name %}`s of a template: (name, first token, end token) in `ENV.lex` order."""
    tokens = list(ENV.lex(source))
    found, stack = [], []
    for i, (_, kind, _value) in enumerate(tokens):
        if kind != "block_begin":
            continue
        words = _tag(tokens, i)
        opens_macro = words[:1] == ["macro"] and len(words) > 1
        opens_set_block = words[:1] == ["set"] and len(words) > 1 and "=" not in words
        if opens_macro or opens_set_block:
            stack.append((words[1], i))
        elif words[:1] in (["endmacro"], ["endset"]) and stack:
            name, first = stack.pop()
            found.append((name, first, i))
    return found


def _in_plain_attribute(source: str, at: int) -> bool:
    """Is position `at` inside the value of an HTML attribute that nobody reads (class, id, data-…)?"""
    before = JINJA_SPAN.sub(lambda m: "\x00" * len(m.group()), source[:at])
    match = OPEN_ATTRIBUTE.search(before)
    return bool(match) and match.group(1).lower() not in USER_FACING_ATTRIBUTES


@cache
def attribute_only_blocks(root: Path = TEMPLATES) -> frozenset[str]:
    """Macros and `{% set %}` blocks whose output only ever lands in attributes such as class="…".

    A macro like `cell_class` writes CSS class names as template data; they are not text a
    person reads as long as every use of the name, in every template, is an expression
    `{{ cell_class(…) }}` inside a non-user-facing attribute. Any other use (in page text,
    in title="…", in a `{% %}` tag, under an alias) keeps the block checked like any text.
    """
    sources = {p: p.read_text(encoding="utf-8") for p in root.rglob("*") if p.suffix in {".html", ".txt"}}
    names = {name for source in sources.values() for name, _, _ in _blocks(source)}
    plain = set()
    for name in names:
        uses = 0
        ok = True
        pattern = re.compile(rf"(?<![\w.]){re.escape(name)}\b")
        for source in sources.values():
            for match in pattern.finditer(source):
                head = source[: match.start()]
                opened = head.rfind("{{")
                if re.search(r"\{%-?\s*(macro|set)\s+$", head) or re.search(r"\{%-?\s*(from|import)\b[^%]*$", head):
                    continue  # the definition itself, or an import: not a use
                if opened == -1 or head.rfind("}}") > opened or not _in_plain_attribute(source, opened):
                    ok = False
                    break
                uses += 1
            if not ok:
                break
        if ok and uses:
            plain.add(name)
    return frozenset(plain)


def literal_text(path: Path, root: Path = TEMPLATES) -> list[str]:
    """Text a person would read that is written in the template itself, not produced by _()."""
    source = path.read_text(encoding="utf-8")
    tokens = list(ENV.lex(source))
    hidden = set()
    for name, start, end in _blocks(source):
        if name in attribute_only_blocks(root):
            hidden.update(range(start, end))
    data = []
    for i, (_, kind, value) in enumerate(tokens):
        # expressions and tags become a placeholder, so attribute values built from _() read as empty
        data.append(value if kind == "data" and i not in hidden else " \x00 ")
    raw = "".join(data)
    if path.suffix == ".txt":
        texts = [raw]
    else:
        collector = TextCollector()
        collector.feed(raw)
        texts = collector.texts
    found = []
    for text in texts:
        for word in text.replace("\x00", " ").split():
            if LETTERS.search(word) and word not in ALLOWED and word.strip(".,:;()·–—|/") not in ALLOWED:
                found.append(word)
    return found


def test_the_checker_skips_only_class_names(tmp_path):
    (tmp_path / "a.html").write_text(
        "{% macro css(x) -%}cell cell-{{ x }}{%- endmacro %}\n"
        "{% macro said(x) -%}Free{%- endmacro %}\n"
        "{% macro hint(x) -%}Too soon{%- endmacro %}\n"
        "{% set label = hint(1) %}\n"
        '<td class="{{ css(1) }}" title="{{ said(1) }}">{{ _("Free") }}</td><p>{{ label }} .ics</p>',
        encoding="utf-8",
    )
    # class names in css() are skipped; a macro shown in title="…" or through a {% set %} is still checked
    assert literal_text(tmp_path / "a.html", root=tmp_path) == ["Free", "Too", "soon"]


@pytest.mark.parametrize(
    "template",
    sorted(p for p in TEMPLATES.rglob("*") if p.suffix in {".html", ".txt"}),
    ids=lambda p: str(p.relative_to(TEMPLATES)),
)
def test_templates_have_no_text_outside_gettext(template: Path):
    assert literal_text(template) == []


def test_chinese_is_the_default(client):
    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")
    response = client.get("/auth/login")
    assert '<html lang="zh-Hans">' in response.text
    assert "登录" in response.text


def test_accept_language_english(client):
    response = client.get("/auth/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in response.text
    assert "Log in" in response.text


def test_switch_is_kept_in_the_session(client):
    response = client.post("/language", data={"language": "en", "next": "/auth/login"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    assert '<html lang="en">' in client.get("/auth/login").text
    client.post("/language", data={"language": "zh_Hans_CN", "next": "https://evil.example/"})
    assert '<html lang="zh-Hans">' in client.get("/auth/login", headers={"Accept-Language": "en"}).text


def test_the_account_language_wins(client, member):
    client.post("/auth/login", data={"email": member.email, "password": "correct horse battery"})
    client.post(
        "/account", data={"display_name": member.display_name, "organisation": member.organisation_id, "language": "en"}
    )
    assert '<html lang="en">' in client.get("/account", headers={"Accept-Language": "zh-CN"}).text
