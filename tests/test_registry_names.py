"""Organisation names: the curated names cover every official body we name in feeds, and no name
in the whole registry has the defects that made shipped names read as typos (issue 14)."""

from __future__ import annotations

import re
import tomllib

import pytest

from feedsvc.registry import (
    CURATED_NAMES,
    LANGS,
    Organisation,
    Registry,
    load_registry,
    parse_curated,
    shipped_organisations,
)

REGISTRY = load_registry()
CURATED = tomllib.loads(CURATED_NAMES.read_text("utf-8"))
TABLE = {org.slug: org for org in shipped_organisations()}

#: Bodies whose names are official and must be curated: every ministry, committee, agency,
#: region or city akimat and foreign mission of the shipped table.
OFFICIAL = sorted(slug for slug, org in TABLE.items()
                  if org.kind in ("ministry", "committee", "agency", "embassy")
                  or (org.kind == "akimat" and org.parent is None))

#: Country names as transliterated from Russian or Kazakh instead of written in English.
TRANSLITERATED = re.compile(
    r"\b(Kuveyt|Germaniya|Avstriya|Frantsiya|Ispaniya|Italiya|Yaponiya|Rossiya|Kitay|Turtsiya|"
    r"Shveytsariya|Shvetsiya|Gretsiya|Polsha|Vengriya|Rumyniya|Bolgariya|Belgiya|Niderlandy|"
    r"Avstraliya|Kanada|Meksika|Braziliya|Indiya|Koreya|Egipet|Iordaniya|Katar|Saudovskaya|"
    r"Gruziya|Armeniya|Azerbaydzhan|Uzbekistan\w*ya|Kirgiziya|Moldaviya|Litva|Latviya|Estoniya|"
    r"Khorvatiya|Serbiya|Chekhiya|Slovakiya|Finlyandiya|Norvegiya|Portugaliya|Malayziya|"
    r"Indoneziya|Tailand|Mongoliya|Afganistan|Pakistan\w+ya|Iran\w+ya|Izrail|Livan|Siriya|"
    r"Marokko|Oman\w+ya|Emiraty|Efiopiya|YuAR|Ukraina|Belarus\w+ya|Tadzhikistan|Turkmeniya)\b")
#: Words written in lower case inside an English official name.
SMALL_WORDS = {"of", "the", "and", "for", "in", "to", "on", "at", "am", "under"}
LATIN = re.compile(r"[A-Za-z]")
CYRILLIC = re.compile(r"[\u0400-\u04FF]")


def every_name() -> list[tuple[str, str, str]]:
    return [(slug, lang, REGISTRY.name(slug, lang)) for slug in sorted(TABLE) for lang in LANGS]


def name_defects(name: str, lang: str) -> list[str]:
    """What is wrong with any name, of any body, in any language."""
    found = []
    if "  " in name:
        found.append("double space")
    if name != name.strip():
        found.append("space at an end")
    if re.search(r"[.,;:/\-–—]$", name):
        found.append("trailing punctuation")
    if name.count("(") != name.count(")"):
        found.append("unbalanced parentheses")
    if re.search(r"\s[,;:]", name):
        found.append("space before punctuation")
    if lang == "en":
        if TRANSLITERATED.search(name):
            found.append("transliterated country name")
        if CYRILLIC.search(name):
            found.append("Cyrillic in an English name")
        if re.search(r" - [a-z]", name):
            found.append("a slug fragment for a place")
        if "Kazakhstan's foreign mission" in name:
            found.append("placeholder mission name")
    return found


def official_defects(name: str, lang: str) -> list[str]:
    """What is wrong with the official name of a ministry, committee, akimat or mission."""
    found = []
    without_brackets = re.sub(r"\([^)]*\)", "", name)
    if lang == "en":
        lower = [w for w in without_brackets.split()[1:]
                 if w[0].islower() and w not in SMALL_WORDS]
        if lower:
            found.append(f"lower-case words {lower}")
        # "Committee ... Ministry of X": the genitive glue "of the" is missing.
        if re.search(r"(?<!\bthe) Ministry\b", name):
            found.append("'Ministry' without 'of the' before it")
    else:
        if LATIN.search(without_brackets):
            found.append("Latin letters outside brackets")
        if lang == "ru" and "Казахстан" in name and not re.search(
                r"Республик[аиеу] Казахстан|Казахстанск", name):
            found.append("'Республики Казахстан' missing")
        region = re.sub(r"(Оңтүстік|Солтүстік|Шығыс|Батыс) Қазақстан", "", name)
        if lang == "kk" and "Қазақстан" in region and not re.search(
                r"Қазақстан Республикасы(ның)? |Қазақстанның", region):
            found.append("'Қазақстан Республикасының' missing")
    return found


def test_every_official_body_has_curated_names_in_english_russian_and_kazakh() -> None:
    missing = [(slug, lang) for slug in OFFICIAL for lang in LANGS
               if not CURATED.get(slug, {}).get(lang)]
    assert missing == []
    assert len(OFFICIAL) > 130  # 22 ministries, 93 missions, 19 akimats, committees, agencies


def test_every_curated_slug_is_a_known_organisation_and_every_entry_has_three_names() -> None:
    assert sorted(set(CURATED) - set(TABLE)) == []
    incomplete = [slug for slug, entry in CURATED.items()
                  if set(entry) - {"note"} != set(LANGS)]
    assert incomplete == []


def test_no_name_in_the_registry_has_a_typo_like_defect() -> None:
    defects = [(slug, lang, name, problem) for slug, lang, name in every_name()
               for problem in name_defects(name, lang)]
    assert defects == []


def test_official_names_are_capitalised_and_glued_as_each_language_writes_them() -> None:
    defects = [(slug, lang, name, problem) for slug in sorted(CURATED) for lang in LANGS
               for name in [REGISTRY.name(slug, lang)]
               for problem in official_defects(name, lang)]
    assert defects == []


@pytest.mark.parametrize(("slug", "lang", "name", "problems"), [
    ("mfa-kuveyt", "en", "Kazakhstan's foreign mission in Kuveyt",
     {"transliterated country name", "placeholder mission name",
      "lower-case words ['foreign', 'mission']"}),
    ("x", "en", "Representative office of the Ministry of foreign Affairs of Kazakhstan in Almaty",
     {"lower-case words ['office', 'foreign']"}),
    ("kgd", "en", "State revenue committee Ministry of finance of the Republic of Kazakhstan",
     {"lower-case words ['revenue', 'committee', 'finance']",
      "'Ministry' without 'of the' before it"}),
    ("x", "en", "Akimat of East Kazakhstan region (ВКО)",
     {"lower-case words ['region']", "Cyrillic in an English name"}),
    ("x", "en", "Justice department - abai", {"a slug fragment for a place",
                                              "lower-case words ['department', 'abai']"}),
    ("x", "en", "Ministry of  Energy.", {"double space", "trailing punctuation"}),
    ("x", "ru", "Посольство Республики Kazakhstan в Кувейте", {"Latin letters outside brackets"}),
    ("x", "kk", "Қазақстан Қаржы министрлігі", {"'Қазақстан Республикасының' missing"}),
])
def test_the_checks_catch_the_names_that_shipped(slug: str, lang: str, name: str,
                                                 problems: set[str]) -> None:
    """The checks above would have failed on the names issue 14 quotes (and on their kin)."""
    found = set(name_defects(name, lang)) | set(official_defects(name, lang))
    assert found == problems


def test_the_names_quoted_in_the_issue_are_now_official() -> None:
    assert REGISTRY.name("mfa-kuveyt", "en") == \
        "Embassy of the Republic of Kazakhstan in the State of Kuwait"
    assert REGISTRY.name("mfa-kuveyt", "ru") == \
        "Посольство Республики Казахстан в Государстве Кувейт"
    assert REGISTRY.name("mfa-kuveyt", "kk") == \
        "Қазақстан Республикасының Кувейт Мемлекетіндегі Елшілігі"
    assert REGISTRY.name("mfa-almaty", "en") == ("Representative Office of the Ministry of Foreign "
                                                  "Affairs of the Republic of Kazakhstan in Almaty")
    assert REGISTRY.name("kgd", "en") == \
        "State Revenue Committee of the Ministry of Finance of the Republic of Kazakhstan"


def test_missions_follow_one_pattern_per_language() -> None:
    en = re.compile(r"^(Embassy|Consulate General|Permanent Mission|Foreign Mission) of the "
                    r"Republic of Kazakhstan (in|to) [A-Zt]")
    ru = re.compile(r"^(Посольство|Генеральное консульство|Постоянное представительство|"
                    r"Загранучреждение) Республики Казахстан (в|во|при) ")
    kk = re.compile(r"^Қазақстан Республикасының \S.*(дағы|дегі|тағы|тегі) "
                    r"(Елшілігі|Бас консулдығы|Тұрақты өкілдігі|шетелдегі мекемесі)$")
    missions = [slug for slug in OFFICIAL if TABLE[slug].kind == "embassy"]
    assert len(missions) == 93
    wrong = [(slug, lang, REGISTRY.name(slug, lang)) for slug in missions
             for lang, pattern in (("en", en), ("ru", ru), ("kk", kk))
             if not pattern.match(REGISTRY.name(slug, lang))]
    assert wrong == []


def test_ministries_and_akimats_follow_one_pattern_per_language() -> None:
    patterns = {
        "ministry": (r"^Ministry (of|for) .+ of the Republic of Kazakhstan$",
                     r"^Министерство .+ Республики Казахстан$",
                     r"^Қазақстан Республикасының .+ министрлігі$"),
        "akimat": (r"^Akimat of .+$", r"^Акимат .+$", r"^.+ әкімдігі$"),
    }
    wrong = [(slug, lang, REGISTRY.name(slug, lang))
             for slug, org in TABLE.items() if org.kind in patterns and slug in CURATED
             for lang, pattern in zip(LANGS, patterns[org.kind], strict=True)
             if not re.match(pattern, REGISTRY.name(slug, lang))]
    assert wrong == []


def test_curated_names_win_over_live_names_and_keep_the_kind_and_parent() -> None:
    live = [Organisation("kgd", "other", None,
                         {"en": "State revenue committee Ministry of finance", "kk": "ҚМ МКК"})]
    registry = load_registry(live)
    kgd = registry.get("kgd")
    assert (kgd.kind, kgd.parent) == ("committee", "minfin")
    assert registry.name("kgd", "en") == REGISTRY.name("kgd", "en")
    assert registry.name("kgd", "kk") == CURATED["kgd"]["kk"]
    assert load_registry(live, curated=False).name("kgd", "en") == \
        "State revenue committee Ministry of finance"


def test_curated_entries_rename_only() -> None:
    curated = parse_curated('[mfa-x]\nen = "Embassy"\nru = ""\nnote = "n"\n')
    assert curated == [Organisation("mfa-x", names={"en": "Embassy"})]
    base = Registry([Organisation("mfa-x", "embassy", "mfa", {"ru": "Посольство"})])
    merged = base.with_names(curated).get("mfa-x")
    assert (merged.kind, merged.parent, merged.names) == \
        ("embassy", "mfa", {"en": "Embassy", "ru": "Посольство"})
