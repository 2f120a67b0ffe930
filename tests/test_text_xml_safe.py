"""One list of characters kept out of every published text (feedsvc/text.py), whether the text
came from a dump or from gov.kz's API."""

from __future__ import annotations

import pytest
from lxml import etree

from feedsvc.sources.govkz import clean_text, html_paragraphs, item_from_api, sanitise_html
from feedsvc.text import has_controls, strip_controls, xml_safe

REMOVED = frozenset([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F,
                     *range(0x80, 0xA0), 0xFEFF, 0xFFFE, 0xFFFF, *range(0xD800, 0xE000)])
ASTRAL_SAMPLES = (0x10000, 0x1F600, 0x1FFFE, 0x10FFFD, 0x10FFFF)


def every_code_point() -> str:
    return "".join(map(chr, [*range(0x10000), *ASTRAL_SAMPLES]))


def test_xml_safe_removes_exactly_the_listed_characters() -> None:
    kept = xml_safe(every_code_point())
    assert {ord(c) for c in kept} == set(range(0x10000)) - REMOVED | set(ASTRAL_SAMPLES)
    assert strip_controls(every_code_point()) == (kept, len(REMOVED))


def test_what_xml_safe_keeps_is_accepted_by_an_xml_writer() -> None:
    element = etree.Element("p")
    element.text = xml_safe(every_code_point())  # lxml refuses any character XML cannot carry
    assert etree.fromstring(etree.tostring(element, encoding="utf-8")).text == element.text


@pytest.mark.parametrize("code", [*sorted(REMOVED - set(range(0xD800, 0xE000)))[::7], 0xD800])
def test_each_removed_character_is_detected_and_removed(code: int) -> None:
    text = f"a{chr(code)}b\tc\nd\re"
    assert has_controls(text)
    assert xml_safe(text) == "ab\tc\nd\re"


def test_gov_kz_text_goes_through_the_same_list() -> None:
    dirty = "Astana\x85 \ufeffnews\x01 \ud800ok\ufffe"
    assert clean_text(dirty) == "Astana news ok"
    assert sanitise_html(f"<p>{dirty}</p><p>&#1;&#xfeff;</p>") == "<p>Astana news ok</p><p></p>"
    assert html_paragraphs(f"<p>{dirty}</p>") == ("Astana news ok",)
    item = item_from_api({"id": 1157092, "title": dirty, "body": f"<p>{dirty}</p>"},
                         slug="mfa", lang="en")
    assert item.title == "Astana news ok" and item.paragraphs == ("Astana news ok",)
