#!/usr/bin/env python3
"""Validate the Orrery natal-reading texts in shared/charts/data/readings/.

Standard library only (Python 3.11+). Usage:

    python3 scripts/check_readings.py [READINGS_DIR]

Checks every JSON file for completeness against the expected key lists,
required fields, paragraph/sentence/word limits, duplicate paragraphs across
all files, stray markdown, and overview placeholders. Prints a summary and
exits 0 on success; prints every problem found and exits 1 otherwise.
"""

from __future__ import annotations

import json
import re
import string
import sys
from itertools import combinations
from pathlib import Path

BODIES = ["sun", "moon", "mercury", "venus", "mars", "jupiter", "saturn",
          "uranus", "neptune", "pluto", "north_node", "south_node", "lilith"]
PLANETS = BODIES[:10]
SIGNS = ["aries", "taurus", "gemini", "cancer", "leo", "virgo", "libra",
         "scorpio", "sagittarius", "capricorn", "aquarius", "pisces"]
HOUSES = [str(n) for n in range(1, 13)]
ASPECTS = ["conjunction", "opposition", "trine", "square", "sextile"]
ELEMENTS = ["fire", "earth", "air", "water"]
MODALITIES = ["cardinal", "fixed", "mutable"]
SIGN_ELEMENT = dict(zip(SIGNS, ELEMENTS * 3))
SIGN_MODALITY = dict(zip(SIGNS, MODALITIES * 4))
PAIRS = [f"{a}_{b}" for a, b in combinations(PLANETS, 2)]  # 45, list order kept

BODY_NAMES = {"sun": "Sun", "moon": "Moon", "mercury": "Mercury", "venus": "Venus",
              "mars": "Mars", "jupiter": "Jupiter", "saturn": "Saturn",
              "uranus": "Uranus", "neptune": "Neptune", "pluto": "Pluto",
              "north_node": "North Node", "south_node": "South Node",
              "lilith": "Lilith"}
ORDINALS = ["First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh",
            "Eighth", "Ninth", "Tenth", "Eleventh", "Twelfth"]
ASPECT_VERB = {"conjunction": "conjunct", "opposition": "opposite",
               "trine": "trine", "square": "square", "sextile": "sextile"}

ALLOWED_PLACEHOLDERS = {"sun_sign", "moon_sign", "ascendant_sign"}
SECTION_KEYS = ["planets", "houses", "aspects", "balance"]

MIN_WORDS, MAX_WORDS = 25, 130
MIN_SENTENCES, MAX_SENTENCES = 2, 4
SNAKE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
MARKDOWN = re.compile(r"(\*\*|__|`|^#|^\s*[-*+]\s|\[[^\]]*\]\(|<[a-z/])", re.M)
SENTENCE_END = re.compile(r"[.!?](?:['\"\u2019\u201d)]*)(?=\s+[A-Z\"'\u2018\u201c(]|\s*$)")


class Checker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.errors: list[str] = []
        self.entries = 0
        self.words = 0
        self.per_file: dict[str, int] = {}
        self.paragraphs: dict[str, str] = {}  # normalised paragraph -> location

    # ---- helpers -------------------------------------------------------
    def err(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    def load(self, name: str):
        path = self.root / name
        if not path.is_file():
            self.err(name, "file is missing")
            return None
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            self.err(name, f"not valid UTF-8 ({exc})")
            return None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            self.err(name, f"invalid JSON ({exc})")
            return None
        self.check_keys(data, name)
        return data

    def check_keys(self, node, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                bare = k[1:] if k.startswith("_") else k  # "_aspect" is allowed
                if not SNAKE.match(bare):
                    self.err(where, f"key {k!r} is not snake_case")
                self.check_keys(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self.check_keys(v, f"{where}[{i}]")

    def expect_keys(self, obj, keys: list[str], where: str) -> bool:
        if not isinstance(obj, dict):
            self.err(where, "expected an object")
            return False
        missing = [k for k in keys if k not in obj]
        extra = [k for k in obj if k not in keys]
        if missing:
            self.err(where, f"missing keys: {', '.join(missing)}")
        if extra:
            self.err(where, f"unexpected keys: {', '.join(extra)}")
        return True

    def check_text(self, text, where: str, placeholders: set[str] | None = None) -> None:
        if not isinstance(text, list) or not 1 <= len(text) <= 2:
            self.err(where, "'text' must be an array of 1-2 paragraphs")
            return
        total = 0
        for i, para in enumerate(text):
            loc = f"{where}/text[{i}]"
            if not isinstance(para, str) or not para.strip():
                self.err(loc, "paragraph must be a non-empty string")
                continue
            if para != para.strip() or "\n" in para:
                self.err(loc, "paragraph has stray whitespace or line breaks")
            if MARKDOWN.search(para):
                self.err(loc, "paragraph looks like it contains markdown")
            found = set(re.findall(r"\{([^{}]*)\}", para))
            allowed = placeholders or set()
            bad = found - allowed
            if bad:
                self.err(loc, f"disallowed placeholder(s): {', '.join(sorted(bad))}")
            if ("{" in para or "}" in para) and para.count("{") != para.count("}"):
                self.err(loc, "unbalanced braces")
            n_sent = len(SENTENCE_END.findall(para))
            if not MIN_SENTENCES <= n_sent <= MAX_SENTENCES:
                self.err(loc, f"{n_sent} sentence(s); expected {MIN_SENTENCES}-{MAX_SENTENCES}")
            total += len(para.split())
            key = " ".join(para.lower().split()).strip(string.punctuation + " ")
            if key in self.paragraphs:
                self.err(loc, f"duplicate paragraph (also at {self.paragraphs[key]})")
            else:
                self.paragraphs[key] = loc
        if not MIN_WORDS <= total <= MAX_WORDS:
            self.err(where, f"{total} words; expected {MIN_WORDS}-{MAX_WORDS}")
        self.words += total

    def check_title(self, entry, where: str, expected: str | None) -> None:
        title = entry.get("title")
        if not isinstance(title, str) or not title.strip():
            self.err(where, "missing or empty 'title'")
        elif expected is not None and title != expected:
            self.err(where, f"title {title!r} != expected {expected!r}")

    def check_keywords(self, entry, where: str) -> None:
        kw = entry.get("keywords")
        if (not isinstance(kw, list) or not 3 <= len(kw) <= 5
                or not all(isinstance(k, str) and k.strip() for k in kw)):
            self.err(where, "'keywords' must be 3-5 non-empty strings")
        elif len(set(kw)) != len(kw):
            self.err(where, "duplicate keywords")

    def entry(self, file: str, entry, where: str, title: str | None,
              fields: list[str], placeholders: set[str] | None = None) -> None:
        if not isinstance(entry, dict):
            self.err(where, "entry must be an object")
            return
        self.expect_keys(entry, fields, where)
        self.check_title(entry, where, title)
        if "keywords" in fields:
            self.check_keywords(entry, where)
        self.check_text(entry.get("text"), where, placeholders)
        self.entries += 1
        self.per_file[file] = self.per_file.get(file, 0) + 1

    # ---- files ---------------------------------------------------------
    def bodies(self) -> None:
        f = "bodies.json"
        d = self.load(f)
        if d is None or not self.expect_keys(d, BODIES, f):
            return
        for b in BODIES:
            if b in d:
                self.entry(f, d[b], f"{f}/{b}", None, ["title", "keywords", "text"])

    def signs(self) -> None:
        f = "signs.json"
        d = self.load(f)
        if d is None or not self.expect_keys(d, SIGNS, f):
            return
        for s in SIGNS:
            if s not in d:
                continue
            e, where = d[s], f"{f}/{s}"
            self.entry(f, e, where, s.title(),
                       ["title", "element", "modality", "keywords", "text"])
            if isinstance(e, dict):
                if e.get("element") != SIGN_ELEMENT[s]:
                    self.err(where, f"element should be {SIGN_ELEMENT[s]!r}")
                if e.get("modality") != SIGN_MODALITY[s]:
                    self.err(where, f"modality should be {SIGN_MODALITY[s]!r}")

    def houses(self) -> None:
        f = "houses.json"
        d = self.load(f)
        if d is None or not self.expect_keys(d, HOUSES, f):
            return
        for h in HOUSES:
            if h in d:
                self.entry(f, d[h], f"{f}/{h}", f"{ORDINALS[int(h) - 1]} House",
                           ["title", "keywords", "text"])

    def nested(self, f: str, inner: list[str], title_fn) -> None:
        d = self.load(f)
        if d is None or not self.expect_keys(d, BODIES, f):
            return
        for b in BODIES:
            if b not in d or not self.expect_keys(d[b], inner, f"{f}/{b}"):
                continue
            for k in inner:
                if k in d[b]:
                    self.entry(f, d[b][k], f"{f}/{b}/{k}", title_fn(b, k), ["title", "text"])

    def angle(self, f: str, label: str) -> None:
        d = self.load(f)
        if d is None or not self.expect_keys(d, SIGNS, f):
            return
        for s in SIGNS:
            if s in d:
                self.entry(f, d[s], f"{f}/{s}", f"{label} in {s.title()}", ["title", "text"])

    def aspects(self) -> None:
        f = "aspects.json"
        d = self.load(f)
        if d is None or not self.expect_keys(d, ["_aspect"] + PAIRS, f):
            return
        generic = d.get("_aspect")
        if generic is not None and self.expect_keys(generic, ASPECTS, f"{f}/_aspect"):
            for a in ASPECTS:
                if a in generic:
                    self.entry(f, generic[a], f"{f}/_aspect/{a}", a.title(),
                               ["title", "keywords", "text"])
        for pair in PAIRS:
            if pair not in d or not self.expect_keys(d[pair], ASPECTS, f"{f}/{pair}"):
                continue
            p1, p2 = pair.split("_")
            for a in ASPECTS:
                if a in d[pair]:
                    title = f"{BODY_NAMES[p1]} {ASPECT_VERB[a]} {BODY_NAMES[p2]}"
                    self.entry(f, d[pair][a], f"{f}/{pair}/{a}", title, ["title", "text"])

    def balance(self) -> None:
        f = "balance.json"
        d = self.load(f)
        if d is None or not self.expect_keys(d, ["elements", "modalities"], f):
            return
        for group, keys in (("elements", ELEMENTS), ("modalities", MODALITIES)):
            g = d.get(group)
            if g is None or not self.expect_keys(g, keys, f"{f}/{group}"):
                continue
            for k in keys:
                if k not in g or not self.expect_keys(g[k], ["dominant", "lacking"],
                                                      f"{f}/{group}/{k}"):
                    continue
                for kind in ("dominant", "lacking"):
                    if kind in g[k]:
                        self.entry(f, g[k][kind], f"{f}/{group}/{k}/{kind}", None,
                                   ["title", "text"])

    def overview(self) -> None:
        f = "overview.json"
        d = self.load(f)
        if d is None or not self.expect_keys(d, ["intro", "sections"], f):
            return
        if "intro" in d:
            self.entry(f, d["intro"], f"{f}/intro", "Overview", ["title", "text"],
                       placeholders=ALLOWED_PLACEHOLDERS)
        sec = d.get("sections")
        if sec is not None and self.expect_keys(sec, SECTION_KEYS, f"{f}/sections"):
            for k in SECTION_KEYS:
                v = sec.get(k)
                if not isinstance(v, str) or not v.strip():
                    self.err(f"{f}/sections/{k}", "must be a non-empty string")

    def readme(self) -> None:
        path = self.root / "README.md"
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            self.err("README.md", "missing or empty")

    def run(self) -> int:
        if not self.root.is_dir():
            print(f"check_readings: directory not found: {self.root}", file=sys.stderr)
            return 1
        self.bodies()
        self.signs()
        self.houses()
        self.nested("body_in_sign.json", SIGNS,
                    lambda b, s: f"{BODY_NAMES[b]} in {s.title()}")
        self.nested("body_in_house.json", HOUSES,
                    lambda b, h: f"{BODY_NAMES[b]} in the {ORDINALS[int(h) - 1]} House")
        self.angle("ascendant_in_sign.json", "Ascendant")
        self.angle("midheaven_in_sign.json", "Midheaven")
        self.aspects()
        self.balance()
        self.overview()
        self.readme()
        if self.errors:
            print(f"check_readings: FAILED with {len(self.errors)} problem(s):", file=sys.stderr)
            for e in self.errors:
                print(f"  - {e}", file=sys.stderr)
            return 1
        for f, n in self.per_file.items():
            print(f"  {f:<24} {n:>4} entries")
        print(f"check_readings: OK - {self.entries} entries, "
              f"{len(self.paragraphs)} unique paragraphs, {self.words} words")
        return 0


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parent.parent / "shared" / "charts" / "data" / "readings"
    root = Path(argv[1]) if len(argv) > 1 else default
    return Checker(root).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
