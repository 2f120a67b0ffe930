"""The text-dump format: decoding, headers, titles, bodies, trailers, and the seeds themselves."""

from __future__ import annotations

import gzip
import io
import random
import sqlite3
import zipfile
from pathlib import Path

import pytest

from feedsvc.errors import SourceFileError
from feedsvc.sources.textdump import decode_dump, parse_dump, read_dump, split_glued

from support import DUMPS, SEEDS


def parse_file(path: Path) -> tuple[list, list[str]]:
    text, warnings = decode_dump(path.read_bytes(), str(path))
    parsed = parse_dump(text, str(path))
    return parsed.items, warnings + parsed.warnings


def parse_text(text: str) -> tuple[list, list[str]]:
    parsed = parse_dump(text, "test.txt")
    return parsed.items, parsed.warnings


def test_seed_000_holds_twenty_items_fourteen_with_govkz_links() -> None:
    items, warnings = parse_file(SEEDS / "000_b0f3105e8a9764a0.txt")
    assert len(items) == 20
    assert sum(1 for item in items if item.news_id) == 14
    assert warnings == []


def test_seed_003_holds_ten_copies_of_five_stories_in_two_sections() -> None:
    items, _ = parse_file(SEEDS / "003_9838bf1a0f284c14.txt")
    assert len(items) == 10
    assert len({item.title_key for item in items}) == 5
    assert {item.sections for item in items} == {("News",), ("Society",)}
    assert {item.publication for item in items} == {"Enbekshi QazaQ"}


def test_header_lines_never_enter_a_body() -> None:
    items, _ = parse_file(SEEDS / "003_9838bf1a0f284c14.txt")
    for item in items:
        assert not any(p in ("Society More", "News More", "Enbekshi QazaQ")
                       for p in item.paragraphs)


def test_source_trailer_glued_to_the_last_sentence_is_taken_out() -> None:
    items, _ = parse_file(SEEDS / "000_b0f3105e8a9764a0.txt")
    first = items[0]
    assert first.url == ("https://www.gov.kz/memleket/entities/mfa-almaty/press/news/details/"
                         "1157305")
    assert first.url_lang == "kk"
    assert first.org == "mfa-almaty" and first.news_id == 1157305
    assert not any("Source" in p for p in first.paragraphs)
    assert first.paragraphs[-1].endswith("sustainable development.")


def test_item_with_only_a_trailer_has_no_body_but_a_link() -> None:
    items, _ = parse_file(SEEDS / "000_b0f3105e8a9764a0.txt")
    solar = next(i for i in items if i.title.startswith("Family Solar Power Plant"))
    assert solar.paragraphs == ()
    assert solar.org == "almobl" and solar.news_id == 1157353


def test_attribution_in_quotes_is_kept_apart_from_the_body() -> None:
    items, _ = parse_file(SEEDS / "003_9838bf1a0f284c14.txt")
    assert items[0].attribution == "Shymkent View"
    assert not items[0].paragraphs[-1].endswith("”")


def test_title_repeated_at_the_start_of_the_body_is_dropped() -> None:
    items, _ = parse_file(SEEDS / "000_b0f3105e8a9764a0.txt")
    kazaid = next(i for i in items if i.org == "kazaid")
    assert kazaid.paragraphs[0].startswith("On 2 February 2026")


@pytest.mark.parametrize(("text", "expected"), [
    ("in Kazakhstan.The event began.", ["in Kazakhstan.", "The event began."]),
    ("the Healthcare Sector.On 2 February", ["the Healthcare Sector.", "On 2 February"]),
    ("Dear taxpayers!The Committee", ["Dear taxpayers!", "The Committee"]),
    ("citizens”.During the meeting", ["citizens”.", "During the meeting"]),
    ("school named after U.K. Tomanov was", ["school named after U.K. Tomanov was"]),
    ("said A. Mynbayev today", ["said A. Mynbayev today"]),
    ("Secondary School No. 183 in Zhosaly", ["Secondary School No. 183 in Zhosaly"]),
    ("grew by 1.5 percent", ["grew by 1.5 percent"]),
    ("visit www.enpf.kz for details", ["visit www.enpf.kz for details"]),
    ("see https://gov.kz/Memleket.Page now", ["see https://gov.kz/Memleket.Page now"]),
    ("met Mr.Smith there", ["met Mr.Smith there"]),
    ("совещание.Обсуждены параметры", ["совещание.", "Обсуждены параметры"]),
])
def test_glued_sentences_split_but_abbreviations_and_urls_survive(
        text: str, expected: list[str]) -> None:
    assert split_glued(text) == expected


def test_utf8_bom_and_crlf_line_endings_are_handled() -> None:
    items, warnings = parse_file(DUMPS / "bom_crlf.txt")
    assert [i.title for i in items] == ["BOM AND CRLF STORY"]
    assert items[0].paragraphs == ("First line of the body.", "Second sentence glued.")
    assert items[0].sections == ("News",)
    assert warnings == []


def test_kazakh_and_russian_items_get_their_language_and_localised_trailers() -> None:
    items, _ = parse_file(DUMPS / "cyrillic.txt")
    kazakh, russian = items
    assert (kazakh.lang, kazakh.org, kazakh.news_id) == ("kk", "astana", 2000002)
    assert (russian.lang, russian.org, russian.news_id) == ("ru", "minfin", 2000003)
    assert kazakh.paragraphs == ("Қала әкімі жаңа мектептің ашылу салтанатына қатысты.",
                                 "Мектеп 1200 оқушыға арналған.")
    assert kazakh.sections == ("Жаңалықтар",) and russian.sections == ("Новости",)


def test_legacy_cp1251_file_is_decoded_with_a_warning() -> None:
    items, warnings = parse_file(DUMPS / "cp1251.txt")
    assert items[0].title == "В Минфине обсудили налоги"
    assert any("cp1251" in w for w in warnings)


def test_control_characters_are_removed_and_reported_by_line() -> None:
    items, warnings = parse_file(DUMPS / "controls.txt")
    assert items[0].title == "CONTROL CHARS STORY"
    assert "\x0b" not in items[0].paragraphs[0] and "\x7f" not in items[0].paragraphs[0]
    assert any(":2: removed 2 control" in w for w in warnings)


def test_impossible_date_keeps_the_item_without_a_publication_date() -> None:
    items, warnings = parse_file(DUMPS / "tricky.txt")
    impossible = next(i for i in items if i.title == "IMPOSSIBLE DATE STORY")
    assert impossible.published is None and impossible.raw_date == "31.02.2026"
    assert any(":4: impossible date 31.02.2026" in w for w in warnings)


def test_titles_keep_quotes_ampersands_and_angle_brackets() -> None:
    items, _ = parse_file(DUMPS / "tricky.txt")
    assert items[0].title == 'Q&A: "Tax <forms>" – what changes in 2026'


def test_items_without_body_and_with_only_a_trailer_are_separate_items() -> None:
    items, _ = parse_file(DUMPS / "tricky.txt")
    titles = [i.title for i in items]
    assert titles == ['Q&A: "Tax <forms>" – what changes in 2026', "IMPOSSIBLE DATE STORY",
                      "Story with no body", "Story with only a trailer",
                      "Story with an attribution"]
    assert items[2].paragraphs == () and items[2].url is None
    assert items[3].news_id == 2000004 and items[3].url_lang == "en"


@pytest.mark.parametrize(("name", "reason"), [
    ("empty.txt", "empty file"),
    ("binary.txt", "binary file"),
    ("latin1.txt", "not UTF-8"),
])
def test_bad_files_raise_an_error_naming_the_file_and_the_reason(name: str, reason: str) -> None:
    path = DUMPS / name
    with pytest.raises(SourceFileError) as caught:
        decode_dump(path.read_bytes(), str(path))
    assert str(caught.value).startswith(str(path))
    assert reason in str(caught.value)


def test_text_before_the_first_title_is_reported_not_silently_dropped() -> None:
    items, warnings = parse_text("just some words, not a title.\nA TITLE 01.02.2026\nBody.\n")
    assert [i.title for i in items] == ["A TITLE"]
    assert any("test.txt:1: 1 line(s) of text before any title line" in w for w in warnings)


def test_a_file_without_any_title_line_says_so() -> None:
    items, warnings = parse_text("Some words.\nMore words.\n")
    assert items == []
    assert any("no news items found" in w or "before any title line" in w for w in warnings)


def test_a_malformed_title_line_does_not_swallow_its_neighbours() -> None:
    text = ("FIRST 01.02.2026\nBody one.\nBROKEN 99.99.2026\nBody two.\n"
            "THIRD 03.02.2026\nBody three.\n")
    items, warnings = parse_text(text)
    assert [i.title for i in items] == ["FIRST", "BROKEN", "THIRD"]
    assert [i.paragraphs for i in items] == [("Body one.",), ("Body two.",), ("Body three.",)]
    assert len(warnings) == 1


def test_blank_lines_separate_paragraphs_but_do_not_end_an_item() -> None:
    items, _ = parse_text("T 01.02.2026\n\nPara one.\n\n\nPara two.\n")
    assert items[0].paragraphs == ("Para one.", "Para two.")


def test_a_stray_nul_and_vertical_tab_cost_no_item_only_a_warning_naming_the_line() -> None:
    # BOM, CRLF, Kazakh and Russian, eight items; a NUL (at offset 966) and a vertical tab in
    # the body of the fourth item. Such a file used to be refused whole as a binary file.
    path = DUMPS / "stray_nul.txt"
    assert path.read_bytes().index(b"\x00") == 966
    result = read_dump(path, None)
    assert len(result.items) == 8
    assert [item.lang for item in result.items] == ["kk"] * 3 + ["ru"] * 5
    assert [item.news_id for item in result.items] == list(range(2000102, 2000110))
    minfin = result.items[3]
    assert minfin.paragraphs == ("Министр финансов провёл совещание. Обсуждены параметры бюджета.",)
    assert result.warnings == [
        f"{path}:13: removed 2 control character(s) (U+0000, U+000B)"]


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("dump.txt", "A TITLE 01.02.2026\nBody.\n" * 50)
    return buffer.getvalue()


def _sqlite_bytes(tmp_path: Path) -> bytes:
    db = tmp_path / "x.sqlite3"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (x TEXT)")
    return db.read_bytes()


@pytest.mark.parametrize(("kind", "reason"), [
    ("png", "image/png signature"),
    ("zip", "application/zip signature"),
    ("gzip", "application/gzip signature"),
    ("elf", "application/x-executable signature"),
    ("sqlite", "application/x-sqlite3 signature"),
    ("jpeg", "image/jpeg signature"),
    ("gif", "image/gif signature"),
    ("pdf", "application/pdf signature"),
    ("random", "NUL or other control bytes"),
    ("latin1-noise", "not UTF-8, and"),
    ("nuls", "are NUL or other control bytes"),
])
def test_binary_files_are_still_refused_with_the_file_and_the_reason(
        tmp_path: Path, kind: str, reason: str) -> None:
    text = "A TITLE 01.02.2026\nBody of the story.\n" * 20
    data = {
        "png": lambda: (DUMPS / "binary.txt").read_bytes(),
        "zip": _zip_bytes,
        "gzip": lambda: gzip.compress(text.encode()),
        "elf": lambda: b"\x7fELF\x02\x01\x01" + bytes(57) + text.encode(),
        "sqlite": lambda: _sqlite_bytes(tmp_path),
        "jpeg": lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + text.encode(),
        "gif": lambda: b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + text.encode(),
        "pdf": lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + text.encode(),
        "random": lambda: random.Random(7).randbytes(4096),
        # invalid UTF-8 with one control byte in 20: below the text limit, not below this one
        "latin1-noise": lambda: b"caf\xe9 \x01 na\xefve " * 50,
        "nuls": lambda: text.encode().replace(b" ", b"\x00"),
    }[kind]()
    path = tmp_path / f"{kind}.txt"
    path.write_bytes(data)
    with pytest.raises(SourceFileError) as caught:
        read_dump(path, None)
    message = str(caught.value)
    assert message.startswith(f"{path}: binary file, not text (")
    assert reason in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_full_of_nuls_are_text(tmp_path: Path, encoding: str) -> None:
    # "utf-16" writes a byte-order mark; the other two do not.
    text = (DUMPS / "cyrillic.txt").read_text(encoding="utf-8") + "English title 06.03.2026\n"
    path = tmp_path / "utf16.txt"
    path.write_bytes(text.encode(encoding))
    result = read_dump(path, None)
    assert [item.lang for item in result.items] == ["kk", "ru", "en"]
    assert result.items[0].paragraphs[0] == "Қала әкімі жаңа мектептің ашылу салтанатына қатысты."
    assert len(result.warnings) == 1 and "UTF-16" in result.warnings[0]


def test_a_title_that_starts_like_a_binary_signature_is_still_text(tmp_path: Path) -> None:
    # "BM" starts a BMP image and "MZ" a Windows program, "ID3" an MP3: here they are words.
    path = tmp_path / "letters.txt"
    path.write_text("BMW PLANT OPENS 01.02.2026\nBody.\nMZ OFFICE 02.02.2026\nBody.\n",
                    encoding="utf-8")
    assert [item.title for item in read_dump(path, None).items] == [
        "BMW PLANT OPENS", "MZ OFFICE"]
