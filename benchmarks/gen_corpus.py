"""Deterministic corpus of gov.kz text dumps for the build benchmark.

Writes ``--files`` dump files (``NNN_<hex>.txt``, file 000 newest) holding ``--items`` distinct
news items over ``--orgs`` organisation slugs, in the format of ``seeds/*.txt``:

- optional header lines: a publication name and section labels ("News More", "World");
- an item = a title line ending in `` DD.MM.YYYY`` (ALL CAPS, quotes, dashes, ``&``, ``<``),
  then 0..n body lines of 3-12 sentences, some glued (``Kazakhstan.The event``), some split
  over several lines; ~75 % end in a ``Source : https://www.gov.kz/.../details/<id>?lang=kk``
  trailer (spacing varies, sometimes glued), with one global increasing news id sequence;
  a few have only the trailer, a few no body, a few a closing credit in quotes;
- ~5 % of the stories appear a second time (another section of the same file, or a nearby
  file) with straight quotes and apostrophes stripped, as in the seeds. They are *extra*
  occurrences: the corpus holds exactly ``--items`` distinct stories, distinct by normalised
  title + date.

A ``corpus.json`` manifest beside the files holds the counts. The same arguments (and the same
entities file, or its absence) always give byte-identical files.

Usage::

    python benchmarks/gen_corpus.py OUT_DIR --items 100000 --orgs 300 --files 100 [--seed 1]
    python benchmarks/gen_corpus.py OUT_DIR --append-one OUT_DIR/new.txt   # one new item
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from random import Random

GENERATOR_VERSION = 1
ENTITIES_JSON = Path("/work/shared/data/govkz-entities.json")
FIRST_DAY = date(2025, 1, 1)
LAST_DAY = date(2026, 11, 20)
FIRST_NEWS_ID = 1_000_000
URL = "https://www.gov.kz/memleket/entities/{org}/press/news/details/{news_id}?lang=kk"
APPEND_ORG = "mfa-brussels"

# Real gov.kz slugs, used when the entities file is absent and always preferred when present.
REAL_SLUGS = (
    "mfa", "mfa-brussels", "mfa-kuveyt", "mfa-almaty", "mfa-amman", "mfa-bucharest",
    "mfa-berlin", "mfa-tokyo", "mfa-london", "mfa-ankara", "mfa-beijing", "mfa-cairo",
    "kgd", "kgd-mangistau", "kgd-zhetysu", "kgd-almaty", "kgd-astana", "minfin", "mod", "mps",
    "almobl", "kyzylorda", "kyzylorda-karmakshy", "kostanai-mendykarin-audany-akimat", "kazaid",
    "dsm", "edu", "adilet", "emer", "emer-almaty", "emer-karaganda", "mdai", "shymkent",
    "astana", "aktobe", "atyrau", "enbek", "moa", "energo", "police", "sci", "mti", "ecogeo",
    "stat", "economy",
)
TOPIC_OF_FAMILY = {
    "mfa": "foreign", "kazaid": "foreign", "kgd": "taxes", "minfin": "taxes", "economy": "taxes",
    "emer": "emergency", "edu": "education", "sci": "education", "mdai": "digital",
    "enbek": "social", "moa": "agriculture", "adilet": "constitution", "mod": "security",
    "police": "security",
}

PUBLICATIONS = ("Enbekshi QazaQ", "Kazakhstanskaya Pravda", "Egemen Qazaqstan", "Astana Times",
                "Shymkent View", "Ortalyq Qazaqstan")
SECTIONS = ("News More", "Society More", "World", "Economy More", "Politics", "Regions More",
            "Official More", "Culture", "Law & Order More", "Health More", "Education")
CREDITS = ("Shymkent View", "Ortalyq Qazaqstan", "Egemen Qazaqstan", "Kazinform", "Aqtobe Times")
PLACES = (
    "Astana", "Almaty", "Shymkent", "Karaganda", "Aktobe", "Taraz", "Pavlodar", "Oskemen",
    "Semey", "Kostanay", "Kyzylorda", "Atyrau", "Aktau", "Petropavl", "Turkistan",
    "Taldykorgan", "Kokshetau", "Ekibastuz", "Zhezkazgan", "Konaev", "Uralsk", "Temirtau",
    "Rudny", "Balkhash", "Satpayev", "Zhanaozen", "Kentau", "Stepnogorsk", "Aral",
    "the Enbekshikazakh District", "the Karmakshy District", "the Mendykara District",
    "the Zhetysu Region", "the Abai Region", "the Ulytau Region", "the Mangystau Region",
)
ABROAD = (
    ("Brussels", "Belgium"), ("Al-Kuwait", "Kuwait"), ("Amman", "Jordan"),
    ("Bucharest", "Romania"), ("Berlin", "Germany"), ("Paris", "France"), ("Tokyo", "Japan"),
    ("Seoul", "the Republic of Korea"), ("Beijing", "China"), ("Ankara", "Türkiye"),
    ("Rome", "Italy"), ("Madrid", "Spain"), ("Warsaw", "Poland"), ("Vienna", "Austria"),
    ("Budapest", "Hungary"), ("Tashkent", "Uzbekistan"), ("Bishkek", "Kyrgyzstan"),
    ("Dushanbe", "Tajikistan"), ("Baku", "Azerbaijan"), ("Tbilisi", "Georgia"),
    ("Cairo", "Egypt"), ("Riyadh", "Saudi Arabia"), ("Abu Dhabi", "the UAE"), ("Doha", "Qatar"),
    ("New Delhi", "India"), ("Kuala Lumpur", "Malaysia"), ("Jakarta", "Indonesia"),
    ("Hanoi", "Vietnam"), ("Ottawa", "Canada"), ("London", "the United Kingdom"),
    ("Helsinki", "Finland"), ("Oslo", "Norway"), ("Lisbon", "Portugal"), ("Athens", "Greece"),
)
PEOPLE = (
    "Zhanibek Abdrashov", "Yerzhan Yelekeyev", "Aigerim Tulegenova", "Nurlan Beknazarov",
    "Bakhyt Nurmukhanov", "Aidarbek Kozhanazarov", "Dana Seitkali", "Yerlan Mukhamedzhanov",
    "Gulnara Abenova", "Marat Zhakupov", "Saule Iskakova", "Askar Omarov", "Madina Kassymova",
    "Timur Baimukhanov", "Zhandos Erkinbek", "Aliya Sarsenbayeva", "Kairat Dossayev",
    "Ainur Bekova", "Serik Tokhtarov", "Dinara Utegenova",
)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


@dataclass(frozen=True)
class Topic:
    titles: tuple[str, ...]
    sentences: tuple[str, ...]


TOPICS: dict[str, Topic] = {
    "constitution": Topic(
        titles=(
            "CONSTITUTIONAL REFORM OF {year}: WHAT CHANGES FOR {PLACE}",
            "The draft Constitution was explained to residents of {place}",
            "People's Council – institute of national agreement: meeting in {place}",
            "Unicameral Parliament: a guarantee of transparency – {person}",
            "\"Referendum-{year}\" online marathon: {person} on the new Constitution",
            "Protection of human rights is the main principle of the new Constitution – {person}",
        ),
        sentences=(
            "A new draft of the Constitution has been submitted as part of the constitutional "
            "reform planned for {year}.",
            "The document is aimed at modernizing the country's legal system and improving "
            "public administration.",
            "The draft provides for the creation of the People's Council, a high consultative "
            "body representing the interests of the people of Kazakhstan.",
            "The number of deputies of the Kurultai will be 145, and there will be only one "
            "chamber.",
            "\"The Preamble for the first time mentions the thousands-year-old historical "
            "continuity of Kazakhstan,\" said {person}.",
            "Citizens of {place} can submit questions to the Constitutional Commission through "
            "the E-petition platform.",
            "The final decision on the amendments will be made following a nationwide "
            "referendum.",
            "The new Constitution recognizes the person, his life, rights and freedoms as the "
            "highest value.",
            "The updated Constitution will strengthen mutual trust between society and the "
            "authorities.",
        ),
    ),
    "taxes": Topic(
        titles=(
            "New versions of tax reporting forms are available in the Taxpayer's Office",
            "State Revenue Department of {place}: payments < {num} thousand tenge explained",
            "Taxes & customs: seminar for entrepreneurs of {place}",
            "DEAR TAXPAYERS OF {PLACE}!",
            "Property tax deadline reminder for residents of {place}",
            "Principles of official ethics of civil servants of the revenue bodies of {place}",
        ),
        sentences=(
            "The State Revenue Committee informs that new versions of tax reporting forms are "
            "available in the Taxpayer's Office.",
            "Declarations under the simplified regime (TNF 910.00) must be submitted before "
            "the deadline.",
            "If you have any questions, you can contact the support service by e-mail.",
            "The tax reporting forms were approved by order of the Minister of Finance No. {num}.",
            "In {place}, {big} taxpayers have already submitted their declarations online.",
            "Receipts of the local budget of {place} exceeded the plan by {pct} percent.",
            "ATTENTION! The new forms are NOT AVAILABLE in the old system.",
            "Entrepreneurs were told about the rules for using cash registers with data "
            "transfer.",
            "Service ethics of civil servants is based on the principles of integrity and "
            "professionalism.",
        ),
    ),
    "foreign": Topic(
        titles=(
            "Kazakhstan and {country} discuss economic cooperation in {city}",
            "Ambassador of Kazakhstan met with the Minister of Foreign Affairs of {country}",
            "Poetic event dedicated to Abai held in {city}",
            "Kazakhstan's digital achievements presented in {city}",
            "Constitutional reforms of Kazakhstan were discussed in {city}",
            "Business forum \"Kazakhstan – {country}\" held in {city}",
        ),
        sentences=(
            "{city}, {day_text} – Ambassador of the Republic of Kazakhstan to {country} met "
            "with representatives of the business community.",
            "The parties discussed the current state and prospects of bilateral cooperation in "
            "trade, investment and transport.",
            "Special attention was paid to the initiative to establish an International Agency "
            "for Biological Safety.",
            "The Kazakh diplomat briefed the interlocutors on the ongoing constitutional reform "
            "in Kazakhstan.",
            "The sides confirmed their mutual interest in deepening practical cooperation.",
            "Trade turnover between Kazakhstan and {country} grew by {pct} percent last year.",
            "The event was attended by more than {num} guests, including members of the Kazakh "
            "diaspora.",
            "The Ambassador invited the partners to the Astana International Forum.",
            "The meeting was held at the Embassy of Kazakhstan in {city}.",
        ),
    ),
    "akimat": Topic(
        titles=(
            "The District Akim visited a number of facilities in {place}",
            "Family solar power plant in {place}",
            "Akim of {place} held a reception of citizens",
            "{PLACE}: NEW SCHOOL FOR {num} PUPILS OPENED",
            "Road repairs & lighting: results of the year in {place}",
            "Heating season in {place} – preparations completed",
        ),
        sentences=(
            "Today, the District Akim visited a number of social and business facilities in "
            "{place}.",
            "The akim got acquainted with the progress of construction of a new school for "
            "{num} pupils.",
            "In {place}, {num} kilometres of local roads were repaired this year.",
            "Residents raised issues of water supply, street lighting and public transport.",
            "The akim instructed the responsible officials to resolve the issues within a "
            "month.",
            "A new outpatient clinic will open in {place} by the end of the year.",
            "All boiler houses of {place} are ready for the heating season.",
            "The family solar power plant provides electricity for {num} households.",
        ),
    ),
    "emergency": Topic(
        titles=(
            "Rescuers of {place} extinguished a fire in a residential building",
            "STORM WARNING FOR {PLACE}",
            "Flood-prevention exercises held in {place}",
            "Emergency situations department of {place} reminds of safety on ice",
            "Rescuers helped {num} motorists stuck on the road near {place}",
        ),
        sentences=(
            "According to the Department of Emergency Situations, strong wind is expected in "
            "{place}.",
            "Rescuers evacuated {num} people from the building; no one was injured.",
            "The fire was extinguished on an area of {num} square metres.",
            "Residents are asked to avoid trips outside settlements unless necessary.",
            "In case of emergency, call 112!",
            "Exercises on flood prevention involved {num} personnel and {pct} units of equipment.",
            "Rescuers remind citizens of the rules of fire safety during the heating season.",
        ),
    ),
    "health": Topic(
        titles=(
            "Vaccination campaign against influenza started in {place}",
            "Prospects for cooperation between KazAID and JICA in the healthcare sector",
            "Free screening for residents of {place}: who is eligible",
            "NEW PERINATAL CENTRE OPENED IN {PLACE}",
            "Doctors of {place} performed {num} high-tech operations",
        ),
        sentences=(
            "The vaccination campaign against influenza has started in all clinics of {place}.",
            "More than {big} residents have already been vaccinated.",
            "Screening examinations are free of charge within the guaranteed volume of medical "
            "care.",
            "The new perinatal centre is equipped with modern diagnostic equipment.",
            "Doctors of the regional hospital performed {num} high-tech operations this year.",
            "Residents can make an appointment through the eGov mobile app.",
            "The parties discussed modern diagnostic and treatment methods.",
        ),
    ),
    "education": Topic(
        titles=(
            "National Fund for Children: accruals for {year}",
            "Schoolchildren of {place} won {num} medals at the olympiad",
            "Grant competition for young scientists announced",
            "Admission campaign in colleges of {place} – what applicants need to know",
            "{num} new kindergartens will open in {place}",
        ),
        sentences=(
            "Every year minor children receive funds from the National Fund in the form of "
            "targeted requirements.",
            "Based on the results of the year, {big} children received the next payment.",
            "Schoolchildren of {place} won {num} medals at the republican olympiad.",
            "The grant competition for young scientists will last until the end of the month.",
            "Applications are accepted through the egov.kz portal.",
            "{num} new kindergartens will open in {place} this year.",
            "Teachers of {place} took part in a professional development course.",
        ),
    ),
    "digital": Topic(
        titles=(
            "Digital Code: protection of personal data – {person}",
            "{num} public services are now available in the eGov mobile app",
            "Digital transformation of {place}: results & plans",
            "ARTIFICIAL INTELLIGENCE IN PUBLIC ADMINISTRATION DISCUSSED IN {PLACE}",
            "Internet for {num} villages of {place}",
        ),
        sentences=(
            "{num} public services are now available in the eGov mobile app.",
            "For the first time, norms have been introduced to protect the rights of citizens "
            "in the digital environment.",
            "By the end of the year, {num} villages of {place} will be connected to broadband "
            "internet.",
            "The share of electronic public services reached {pct} percent.",
            "Artificial intelligence will be used to process citizens' appeals.",
            "Legal mechanisms have been defined for ensuring the security of personal data.",
        ),
    ),
    "agriculture": Topic(
        titles=(
            "Sowing campaign in {place}: {num} thousand hectares planned",
            "Farmers of {place} received subsidies",
            "HARVEST IN {PLACE} EXCEEDED {num} THOUSAND TONNES",
            "Agricultural fair held in {place}",
        ),
        sentences=(
            "Farmers of {place} plan to sow {num} thousand hectares this spring.",
            "Subsidies of {num} million tenge were paid to agricultural producers.",
            "The harvest in {place} exceeded {num} thousand tonnes.",
            "More than {num} farms took part in the agricultural fair.",
            "Preferential diesel fuel is provided for the sowing campaign.",
        ),
    ),
    "social": Topic(
        titles=(
            "Job fair in {place}: {num} vacancies offered",
            "Pension payments will be indexed by {pct}%",
            "Social support for large families of {place}",
            "\"Enbek\" programme: {num} residents of {place} started a business",
        ),
        sentences=(
            "More than {num} vacancies were offered at the job fair in {place}.",
            "Pension payments will be indexed by {pct} percent from January 1.",
            "Large families of {place} receive targeted social assistance.",
            "{num} residents of {place} received grants to start a business.",
            "Employers of {place} signed memoranda on the employment of young people.",
        ),
    ),
    "security": Topic(
        titles=(
            "Minister of Defence of Kazakhstan met with the Ambassador of {country}",
            "Police of {place}: {num} fraud cases solved",
            "Road safety campaign in {place}",
            "MILITARY EXERCISES HELD NEAR {PLACE}",
        ),
        sentences=(
            "Police officers of {place} solved {num} cases of internet fraud.",
            "Citizens are urged not to disclose the codes from SMS messages to anyone.",
            "The parties discussed military and military-technical cooperation with {country}.",
            "The exercises involved {num} servicemen and modern equipment.",
            "During the road safety campaign, {num} violations were detected.",
        ),
    ),
}
GENERIC = (
    "The event was attended by representatives of government agencies, the business community "
    "and the public.",
    "The participants confirmed their willingness to contribute to the sustainable development "
    "of the region.",
    "Special attention was paid to the implementation of the instructions of the Head of State.",
    "The meeting was held in a constructive atmosphere.",
    "Following the meeting, the parties agreed to continue joint work.",
    "Detailed information is available on the official website.",
    "In {year}, this work will be continued in all districts of {place}.",
    "The event was organized with the support of the local executive bodies.",
    "According to the organizers, more than {num} people took part.",
    "For reference: the programme has been implemented since January 1, 2024.",
    "Journalists of regional media covered the event.",
    "Residents thanked the organizers for the useful information.",
)
APPEND_SENTENCES = (
    "{city}, {day_text} – The Embassy of Kazakhstan in Belgium held a briefing on the launch of "
    "a direct air service between Astana and Brussels.",
    "The first flight is planned for the spring season.",
    "The participants discussed the expansion of tourist and business exchanges.",
)


@dataclass(slots=True)
class Story:
    """One distinct news item and where its occurrences go."""

    seq: int
    day: date
    title: str
    lines: list[str]
    org: str | None = None
    news_id: int | None = None
    places: list[tuple[int, int]] = field(default_factory=list)  # (file, section) occurrences


_NOT_WORD = re.compile(r"[^\w]+")


def normalise_title(title: str) -> str:
    """Casefolded words only, as feedsvc and the baseline compare titles."""
    text = unicodedata.normalize("NFKC", title).casefold()
    for mark in ("'", "’", "ʼ", "`"):
        text = text.replace(mark, "")
    return " ".join(_NOT_WORD.sub(" ", text).split())


def strip_quotes(text: str) -> str:
    """What a re-published copy loses: straight quotes and apostrophes (curly ones stay)."""
    return text.replace('"', "").replace("'", "")


# --- organisations ---------------------------------------------------------------------------


def choose_slugs(rng: Random, count: int, entities: Path | None) -> tuple[list[str], str]:
    """``count`` slugs: the real ones first, then the entities file or ``<family>-x<n>``."""
    known = _entity_slugs(entities)
    chosen = [s for s in REAL_SLUGS if known is None or s in known][:count]
    if known is not None:
        rest = sorted(known - set(chosen))
        chosen += rng.sample(rest, min(count - len(chosen), len(rest)))
        source = f"entities:{entities}"
    else:
        source = "embedded"
    families = sorted({s.split("-")[0] for s in REAL_SLUGS})
    number = 0
    while len(chosen) < count:
        number += 1
        chosen.append(f"{families[number % len(families)]}-x{number}")
    return chosen, source


def _entity_slugs(path: Path | None) -> set[str] | None:
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {e["slug"] for e in data if isinstance(e, dict) and isinstance(e.get("slug"), str)}


def org_weights(count: int) -> list[float]:
    """A long tail: a few bodies publish a lot, most publish a little."""
    return [1.0 / (rank + 1) ** 0.8 for rank in range(count)]


def topic_for(rng: Random, org: str | None) -> str:
    family = org.split("-")[0] if org else ""
    if family in TOPIC_OF_FAMILY and rng.random() < 0.7:
        return TOPIC_OF_FAMILY[family]
    return rng.choice(TOPIC_NAMES)


TOPIC_NAMES = tuple(TOPICS)


# --- one story ---------------------------------------------------------------------------------


def make_fill(rng: Random, day: date) -> dict[str, str]:
    place = rng.choice(PLACES)
    city, country = rng.choice(ABROAD)
    return {
        "place": place, "PLACE": place.upper(), "city": city, "country": country,
        "person": rng.choice(PEOPLE), "num": str(rng.randint(2, 480)),
        "big": f"{rng.randint(1_000, 999_999):,}", "pct": str(rng.randint(2, 40)),
        "year": str(day.year), "day_text": f"{MONTHS[day.month - 1]} {day.day}, {day.year}",
    }


def make_title(rng: Random, topic: str, fill: dict[str, str]) -> str:
    title = rng.choice(TOPICS[topic].titles).format_map(fill)
    if rng.random() < 0.08:
        title = title.upper()
    return title


def make_sentences(rng: Random, topic: str, fill: dict[str, str]) -> list[str]:
    """3-12 different sentences, about 70 % on the topic, in the topic's order then shuffled."""
    own = TOPICS[topic].sentences
    count = rng.randint(3, 12)
    on_topic = min(len(own), max(2, round(count * 0.7)))
    picked = rng.sample(own, on_topic) + rng.sample(GENERIC, min(len(GENERIC), count - on_topic))
    rng.shuffle(picked)
    return [s.format_map({**fill, "num": str(rng.randint(2, 480))}) for s in picked]


def join_sentences(rng: Random, sentences: list[str], glue_rate: float) -> str:
    out = sentences[0]
    for sentence in sentences[1:]:
        out += ("" if rng.random() < glue_rate else " ") + sentence
    return out


def layout(rng: Random, sentences: list[str]) -> list[str]:
    """One long line, a glued line, or several lines (paragraphs)."""
    roll = rng.random()
    if roll < 0.45:
        return [join_sentences(rng, sentences, 0.0)]
    if roll < 0.70:
        return [join_sentences(rng, sentences, 0.4)]
    cuts = sorted(rng.sample(range(1, len(sentences)), min(len(sentences) - 1, rng.randint(1, 3))))
    bounds = [0, *cuts, len(sentences)]
    return [join_sentences(rng, sentences[a:b], 0.2) for a, b in pairwise(bounds)]


def add_trailer(rng: Random, lines: list[str], url: str) -> list[str]:
    roll = rng.random()
    if not lines or roll < 0.15:
        return [*lines, f"Source : {url}"]
    if roll < 0.55:
        tail = f" Source : {url}"
    elif roll < 0.85:
        tail = f"Source : {url}"
    else:
        tail = rng.choice((f" Source: {url}", f" Source :  {url}", f"  Source : {url}"))
    return [*lines[:-1], lines[-1] + tail]


def make_body(rng: Random, topic: str, fill: dict[str, str], url: str | None) -> list[str]:
    roll = rng.random()
    if url is not None and roll < 0.06:
        return [f"Source : {url}"]
    if url is None and roll < 0.04:
        return []
    lines = layout(rng, make_sentences(rng, topic, fill))
    if url is not None:
        return add_trailer(rng, lines, url)
    if roll > 0.95:
        lines[-1] += f" “{rng.choice(CREDITS)}”"
    return lines


# --- the corpus --------------------------------------------------------------------------------


def make_days(rng: Random, count: int) -> list[date]:
    span = (LAST_DAY - FIRST_DAY).days
    return sorted(FIRST_DAY + timedelta(days=rng.randint(0, span)) for _ in range(count))


def make_stories(rng: Random, items: int, slugs: list[str], link_rate: float) -> list[Story]:
    """``items`` stories, oldest first, distinct by normalised title + date."""
    weights = org_weights(len(slugs))
    seen: set[str] = set()
    stories: list[Story] = []
    news_id = FIRST_NEWS_ID + rng.randint(0, 999)
    linked = 0
    for seq, day in enumerate(make_days(rng, items)):
        has_link = rng.random() < link_rate
        org = (slugs[linked % len(slugs)] if linked < len(slugs)
               else rng.choices(slugs, weights)[0]) if has_link else None
        fill = make_fill(rng, day)
        topic = topic_for(rng, org if has_link else rng.choice(slugs))
        title = unique_title(rng, topic, fill, day, seen)
        url = None
        if has_link:
            linked += 1
            news_id += rng.randint(1, 6)
            url = URL.format(org=org, news_id=news_id)
        stories.append(Story(seq, day, title, make_body(rng, topic, fill, url), org,
                             news_id if has_link else None))
    return stories


def unique_title(rng: Random, topic: str, fill: dict[str, str], day: date,
                 seen: set[str]) -> str:
    title = make_title(rng, topic, fill)
    base, number = title, 1
    while (key := f"{normalise_title(title)}|{day.isoformat()}") in seen:
        number += 1
        title = f"{base} ({number})" if number > 2 or rng.random() < 0.5 else \
            f"{base} – {rng.choice(PLACES)}"
    seen.add(key)
    return title


def split_files(rng: Random, count: int, files: int) -> list[range]:
    """Contiguous chunks of roughly equal size (±30 %)."""
    weights = [rng.uniform(0.7, 1.3) for _ in range(files)]
    total = sum(weights)
    bounds, acc = [0], 0.0
    for weight in weights:
        acc += weight
        bounds.append(round(count * acc / total))
    return [range(a, b) for a, b in pairwise(bounds)]


@dataclass(slots=True)
class DumpFile:
    name: str
    publication: str | None
    sections: list[str]


def plan_files(rng: Random, stories: list[Story], files: int) -> list[DumpFile]:
    """Newest stories in file 000; each story in one random section of its file."""
    newest_first = sorted(stories, key=lambda s: s.seq, reverse=True)
    plan: list[DumpFile] = []
    for index, chunk in enumerate(split_files(rng, len(stories), files)):
        sections = rng.sample(SECTIONS, rng.choice((1, 2, 2, 3, 3, 4)))
        publication = rng.choice(PUBLICATIONS) if rng.random() < 0.5 else None
        plan.append(DumpFile(f"{index:03d}_{rng.getrandbits(64):016x}.txt", publication,
                             sections))
        for position in chunk:
            newest_first[position].places.append((index, rng.randrange(len(sections))))
    return plan


def place_duplicates(rng: Random, stories: list[Story], plan: list[DumpFile],
                     rate: float) -> int:
    """Give ``rate`` of the stories a second occurrence: another section or a nearby file."""
    chosen = sorted(rng.sample(range(len(stories)), round(len(stories) * rate)))
    for index in chosen:
        story = stories[index]
        file, section = story.places[0]
        sections = len(plan[file].sections)
        if sections > 1 and rng.random() < 0.5:
            other = rng.choice([s for s in range(sections) if s != section])
            story.places.append((file, other))
        else:
            near = min(max(file + rng.choice((-3, -2, -1, 1, 2, 3)), 0), len(plan) - 1)
            if near == file:
                near = file + 1 if file + 1 < len(plan) else file - 1
            story.places.append((near, rng.randrange(len(plan[near].sections))))
    return len(chosen)


def render_files(stories: list[Story], plan: list[DumpFile]) -> list[str]:
    """The text of every file: header lines, then each section's items, newest first."""
    buckets: list[list[list[tuple[int, bool, Story]]]] = [
        [[] for _ in f.sections] for f in plan]
    for story in stories:
        for copy, (file, section) in enumerate(story.places):
            buckets[file][section].append((story.seq, copy > 0, story))
    texts = []
    for dump, sections in zip(plan, buckets, strict=True):
        out: list[str] = [dump.publication] if dump.publication else []
        for label, entries in zip(dump.sections, sections, strict=True):
            if not entries:
                continue
            out.append(label)
            for _, stripped, story in sorted(entries, key=lambda e: e[0], reverse=True):
                out.extend(item_lines(story, stripped))
        texts.append("\n".join(out) + "\n")
    return texts


def item_lines(story: Story, stripped: bool) -> list[str]:
    lines = [f"{story.title} {story.day:%d.%m.%Y}", *story.lines]
    return [strip_quotes(line) for line in lines] if stripped else lines


def generate(out_dir: Path, items: int, orgs: int, files: int, seed: int = 1,
             dup_rate: float = 0.05, link_rate: float = 0.75,
             entities: Path | None = ENTITIES_JSON) -> dict:
    """Write the corpus and its manifest into ``out_dir``; return the manifest."""
    rng = Random(seed)
    slugs, slug_source = choose_slugs(rng, orgs, entities)
    stories = make_stories(rng, items, slugs, link_rate)
    plan = plan_files(rng, stories, files)
    duplicates = place_duplicates(rng, stories, plan, dup_rate)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.txt"):
        old.unlink()
    listing = []
    for dump, text in zip(plan, render_files(stories, plan), strict=True):
        data = text.encode("utf-8")
        (out_dir / dump.name).write_bytes(data)
        listing.append({"name": dump.name, "bytes": len(data)})
    manifest = build_manifest(stories, listing, duplicates, slug_source,
                              params(items, orgs, files, seed, dup_rate, link_rate, slug_source))
    (out_dir / "corpus.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def params(items: int, orgs: int, files: int, seed: int, dup_rate: float, link_rate: float,
           slug_source: str) -> dict:
    """What the corpus depends on; equal params mean an equal corpus (the cache key)."""
    return {"generator_version": GENERATOR_VERSION, "items": items, "orgs": orgs,
            "files": files, "seed": seed, "dup_rate": dup_rate, "link_rate": link_rate,
            "slug_source": slug_source}


def expected_slug_source(entities: Path | None = ENTITIES_JSON) -> str:
    return f"entities:{entities}" if _entity_slugs(entities) is not None else "embedded"


def build_manifest(stories: list[Story], listing: list[dict], duplicates: int,
                   slug_source: str, parameters: dict) -> dict:
    linked = [s for s in stories if s.news_id is not None]
    orgs = sorted({s.org for s in linked if s.org})
    return {
        "params": parameters,
        "distinct_items": len(stories),
        "duplicates": duplicates,
        "occurrences": len(stories) + duplicates,
        "items_with_link": len(linked),
        "items_without_link": len(stories) - len(linked),
        "orgs": len(orgs),
        "ministries": len({o.split("-")[0] for o in orgs}),
        "slug_source": slug_source,
        "min_news_id": min((s.news_id for s in linked if s.news_id), default=None),
        "max_news_id": max((s.news_id for s in linked if s.news_id), default=None),
        "first_day": min(s.day for s in stories).isoformat() if stories else None,
        "last_day": max(s.day for s in stories).isoformat() if stories else None,
        "bytes": sum(f["bytes"] for f in listing),
        "files": listing,
        "org_slugs": orgs,
    }


# --- one more item -----------------------------------------------------------------------------


def write_one_item(corpus_dir: Path, dest: Path | None = None,
                   today: date | None = None) -> dict:
    """Write ONE new dump file with ONE new item: the next news id, dated today.

    The date is today's, but never older than the corpus's newest day, so the item is the
    newest everywhere. Default file: ``corpus_dir/zz_added_<id>.txt``.
    """
    manifest = read_manifest(corpus_dir) or {}
    news_id = (manifest.get("max_news_id") or FIRST_NEWS_ID * 9) + 1
    last = date.fromisoformat(manifest["last_day"]) if manifest.get("last_day") else None
    day = max(today or date.today(), last) if last else (today or date.today())
    slugs = manifest.get("org_slugs") or [APPEND_ORG]
    org = APPEND_ORG if APPEND_ORG in slugs else slugs[0]
    fill = {"city": "Brussels", "day_text": f"{MONTHS[day.month - 1]} {day.day}, {day.year}"}
    body = " ".join(s.format_map(fill) for s in APPEND_SENTENCES)
    title = f"Direct air service between Astana and Brussels announced (news {news_id})"
    url = URL.format(org=org, news_id=news_id)
    dest = dest or corpus_dir / f"zz_added_{news_id}.txt"
    dest.write_text(f"News More\n{title} {day:%d.%m.%Y}\n{body} Source : {url}\n",
                    encoding="utf-8")
    return {"path": str(dest), "news_id": news_id, "org": org, "day": day.isoformat(),
            "title": title}


def read_manifest(corpus_dir: Path) -> dict | None:
    try:
        return json.loads((corpus_dir / "corpus.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="corpus directory (created)")
    parser.add_argument("--items", type=int, default=100_000, help="distinct items")
    parser.add_argument("--orgs", type=int, default=300, help="organisation slugs")
    parser.add_argument("--files", type=int, default=100, help="dump files")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dup-rate", type=float, default=0.05,
                        help="share of stories that appear a second time (default 0.05)")
    parser.add_argument("--link-rate", type=float, default=0.75,
                        help="share of stories with a Source link (default 0.75)")
    parser.add_argument("--entities", type=Path, default=ENTITIES_JSON,
                        help="govkz-entities.json to take slugs from (used if present)")
    parser.add_argument("--append-one", type=Path, metavar="FILE",
                        help="instead of generating: write FILE with one new item (next news "
                             "id of OUT_DIR/corpus.json, today's date)")
    parser.add_argument("--today", type=date.fromisoformat, help="date for --append-one")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.append_one:
        print(json.dumps(write_one_item(args.out_dir, args.append_one, args.today)))
        return 0
    started = time.perf_counter()
    manifest = generate(args.out_dir, args.items, args.orgs, args.files, args.seed,
                        args.dup_rate, args.link_rate, args.entities)
    elapsed = time.perf_counter() - started
    print(f"{args.out_dir}: {len(manifest['files'])} files, {manifest['bytes'] / 1e6:.1f} MB, "
          f"{manifest['distinct_items']} distinct items + {manifest['duplicates']} duplicates, "
          f"{manifest['items_with_link']} with a link, {manifest['orgs']} orgs "
          f"({manifest['slug_source']}), {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
