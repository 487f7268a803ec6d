"""A small synthetic English NER corpus, generated from templates and name lists.

Everything here is written for nerkit; no real data set is copied. Sentences come from
token-level templates whose slots are filled from name pools. Each pool has a *shared*
part, used by every split, and a *held-out* part that only dev, test and
``synthetic_texts`` draw from, so dev/test contain names the training split never shows
(and person names are recombined freely). A tagger therefore has to rely on context and
character features, not on memorised strings.

The corpus also contains ambiguous words (the first names "Jordan", "Paris" and
"Florence" are also places; "Ford" is a surname and a company), capitalised non-entities
("President", "Monday"), multi-word entities of 2-4 tokens, sentences without entities
and the odd all-caps headline.

With ``nested=True`` the same sentences carry extra inner spans (the LOC "Leeds" in the
ORG "University of Leeds", the PER in the ORG "Maria Costa Foundation", ...); with
``nested=False`` only the outermost spans are kept, so both modes share their tokens.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from nerkit.data.spans import Example, Span
from nerkit.errors import DataError

ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")
SPLIT_SIZES = {"train": 1200, "dev": 250, "test": 250}
_SPLIT_OFFSETS = {"train": 0, "dev": 1_000, "test": 2_000}
_NOVEL_RATE = {"train": 0.0, "dev": 0.5, "test": 0.5}  # chance of a held-out name per draw
_HEADLINE_RATE = 0.04  # sentences written all in capitals
_EMPTY_RATE = 0.1  # sentences drawn from the entity-free templates


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


# name -> (shared items, held-out items); items may span several tokens.
_POOLS: dict[str, tuple[list[str], list[str]]] = {
    "first": (
        _items(
            "Angela, Maria, John, David, Sarah, Michael, Laura, James, Elena, Thomas, Anna, Peter,"
            "Sophie, Daniel, Emma, Robert, Claire, Marco, Lucia, Ahmed, Fatima, Hiroshi, Yuki,"
            "Pablo, Carmen, Ivan, Olga, Kwame, Amara, Liam, Chloe, Henrik, Ingrid, Rafael, Ana,"
            "Samuel, Grace, Viktor, Nadia, Omar, Leila, Paolo, Giulia, Jean-Pierre, Marie, Andrew,"
            "Helen, Mark, Rachel, Stefan, Katarina, Diego, Isabel, Tomas, Eva, Kenji, Mei, Arjun,"
            "Priya, Jordan, Paris, Florence, Austin, Georgia, Sydney, Victoria, Chelsea, Kofi"
        ),
        _items(
            "Beatrice, Oskar, Tariq, Ingeborg, Matteo, Zanele, Lorcan, Svetlana, Rohan, Aiko,"
            "Desmond, Freya, Cosimo, Malika, Teodor, Niamh, Emeka, Yasmin, Bjorn, Lucinda, Anders,"
            "Imogen, Rashid, Solveig, Dariusz, Pilar, Thandiwe, Gregor, Wen, Ottilie, Anne-Marie"
        ),
    ),
    "surname": (
        _items(
            "Smith, Johnson, Brown, Garcia, Muller, Rossi, Tanaka, Kowalski, Novak, Silva, Dubois,"
            "Jensen, Petrov, Okafor, Mensah, Nakamura, Fischer, Moreau, Costa, Lindqvist, Hughes,"
            "Walker, Patel, Khan, Chen, Wang, Santos, Ferreira, Schmidt, Weber, Bianchi, Romano,"
            "Murphy, Kelly, Clarke, Bennett, Harrison, Turner, Morgan, Cooper, Ward, Foster, Haddad,"
            "Yilmaz, Demir, Ivanova, Horvat, Andersen, Nilsson, Virtanen, Kovacs, Popescu, Marino,"
            "Lopez, Fernandez, Alvarez, Mendes, Suzuki, Sato, Kim, Park, Nguyen, Tran, Ford,"
            "Washington, Lincoln, Chase, Smith-Jones, de Vries, van Dijk, da Silva"
        ),
        _items(
            "Achterberg, Brannigan, Castellanos, Drozdov, Fairweather, Gallardo, Holmqvist, Ibarra,"
            "Jankowski, Kariuki, Lemaire, Mwangi, Nordstrom, Oyelaran, Pellegrini, Quigley, Rautio,"
            "Szabo, Thorsen, Underwood, Valente, Whitcombe, Xiong, Yamamoto, Zeller, Okonkwo,"
            "Haverkamp, Ravensworth, Moreno-Diaz, ter Horst, van der Berg"
        ),
    ),
    "city": (
        _items(
            "London, Paris, Berlin, Madrid, Rome, Tokyo, Nairobi, Lagos, Cairo, Toronto, Sydney,"
            "Chicago, Boston, Leeds, Manchester, Lyon, Milan, Munich, Hamburg, Vienna, Prague,"
            "Warsaw, Lisbon, Porto, Dublin, Oslo, Stockholm, Helsinki, Athens, Istanbul, Mumbai,"
            "Delhi, Osaka, Seoul, Lima, Bogota, Austin, Florence, Victoria, Washington, Lincoln,"
            "New York, Los Angeles, San Francisco, Buenos Aires, Hong Kong, Cape Town, Salt Lake City"
        ),
        _items(
            "Tampere, Bergamo, Kumasi, Arequipa, Gdansk, Valladolid, Aarhus, Sapporo, Mombasa, Brno,"
            "Graz, Coimbra, Thessaloniki, Izmir, Ljubljana, Tallinn, Mendoza, Winnipeg, Adelaide,"
            "Port Elizabeth, Santa Cruz"
        ),
    ),
    "country": (
        _items(
            "France, Germany, Spain, Italy, Japan, Kenya, Nigeria, Egypt, Canada, Brazil, Argentina,"
            "India, China, Poland, Sweden, Norway, Ireland, Portugal, Greece, Turkey, Jordan,"
            "Georgia, Mexico, Peru, South Africa, New Zealand, U.S., U.K."
        ),
        _items("Uruguay, Latvia, Bhutan, Malawi, Slovenia, Ecuador, Mongolia, Namibia"),
    ),
    "region": (
        _items("Bavaria, Catalonia, Siberia, Patagonia, Scandinavia, Tuscany, Texas, Normandy"),
        _items("Andalusia, Lapland, Silesia, Transvaal"),
    ),
    "stem": (
        _items(
            "Northwind, Bluestone, Redwood, Silverline, Apex, Meridian, Orion, Summit, Crescent,"
            "Harbor, Evergreen, Ironbridge, Falcon, Vertex, Horizon, Keystone, Pinnacle, Lakeside"
        ),
        _items("Starling, Copperfield, Brightmoor, Tidewater, Halcyon, Ashgrove, Marlow"),
    ),
    "suffix": (
        _items(
            "Systems, Holdings, Group, Industries, Energy, Airlines, Motors, Capital, Foods, Media,"
            "Technologies, Bank, Logistics, Insurance, Pharmaceuticals, Media Group, Power and Light"
        ),
        [],
    ),
    "org": (
        _items(
            "Ford, United Nations, European Union, Red Cross, Interpol, U.N., NATO, Greenpeace,"
            "World Bank, Amnesty International, World Health Organization, Reuters"
        ),
        _items("Medecins Sans Frontieres, Oxfam, African Union"),
    ),
    "club_suffix": (_items("United, Rovers, Athletic, City, Wanderers, FC"), []),
    "nationality": (
        _items(
            "French, German, Spanish, Italian, Japanese, Kenyan, Nigerian, Egyptian, Canadian,"
            "Brazilian, Argentine, Indian, Chinese, Polish, Swedish, Norwegian, Irish, Portuguese,"
            "Greek, Turkish, British, American, European, Mexican, Dutch"
        ),
        _items("Finnish, Chilean, Ghanaian, Hungarian, Slovak, Peruvian, Estonian, Icelandic"),
    ),
    "event": (
        _items(
            "World Cup, Olympic Games, Champions League, Davis Cup, Nobel Prize, Booker Prize,"
            "Super Bowl, Eurovision Song Contest, Winter Olympics, Cold War, Euro 2024, Ryder Cup"
        ),
        _items("Copa America, Africa Cup of Nations, Pulitzer Prize"),
    ),
    "language": (
        _items("English, Arabic, Mandarin, Swahili, Spanish, Portuguese, Russian, Hindi, Japanese"),
        _items("Esperanto, Yoruba, Tagalog"),
    ),
}

_WORDS = {
    "DAY": _items("Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday"),
    "MONTH": _items("January, March, April, June, July, September, October, December"),
    "ROLE": _items(
        "chief executive, chairman, spokeswoman, spokesman, coach, finance minister, director,"
        "research director, founder, treasurer"
    ),
    "TITLE": _items("President, Minister, Senator, Governor, Professor, General, Judge, Coach"),
}

# Token-level templates: slots in braces, every other token literal.
_TEMPLATES = [
    "{PER} visited {CITY} on {DAY} .",
    "{PER} , the {ROLE} of {COMPANY} , said on {DAY} that profits rose {PCT} .",
    "{SURNAME} said the talks in {CITY} had been constructive .",
    "{COMPANY} shares fell {PCT} in {CITY} after the company cut its forecast .",
    "The {NAT} team beat {CLUB} {SCORE} - {SCORE} in the {EVENT} .",
    "{PER} will lead the {NAT} delegation at the {EVENT} in {CITY} .",
    "Police in {CITY} arrested {NUM} people on {DAY} after protests outside {ORG} .",
    "{ORG} announced a new office in {CITY} , {COUNTRY} .",
    "Officials from {ORG} met {PER} in {COUNTRY} last week .",
    "{PER} joined {CLUB} from {CLUB} for an undisclosed fee .",
    "{SURNAME} 's goal gave {CLUB} a {SCORE} - {SCORE} win over {CLUB} .",
    "{COUNTRY} and {COUNTRY} signed a trade agreement in {CITY} on {DAY} .",
    "The {NAT} government said it would not comment on the report .",
    "{PER} , who speaks fluent {LANG} , moved to {CITY} in {YEAR} .",
    "Born in {CITY} , {SURNAME} studied at the {ORG} before joining {COMPANY} .",
    "{ORG} said in a statement that it did n't expect further delays .",
    "The {EVENT} will be held in {CITY} in {MONTH} {YEAR} .",
    "{PER} won the {EVENT} for the second time .",
    "Heavy rain caused flooding across {LOC} on {DAY} .",
    "{COMPANY} agreed to buy {COMPANY} for $ {NUM} million .",
    "{PER} ( {CLUB} ) finished second behind {PER} ( {CLUB} ) .",
    "{TITLE} {PER} arrived in {CITY} for talks with {ORG} .",
    "A spokesman for {ORG} declined to comment .",
    "{PER} told reporters in {CITY} that the deal was fair .",
    "Tourism in {COUNTRY} grew by {PCT} last year , according to {ORG} .",
    "{NAT} and {NAT} troops held joint exercises near {LOC} .",
    "{SURNAME} , {NUM} , has played for {CLUB} since {YEAR} .",
    "Flights between {CITY} and {CITY} were cancelled on {DAY} .",
    "{PER} and {PER} will meet in {CITY} next {MONTH} .",
    "{ORG} hired {PER} as its new {ROLE} .",
    "According to {PER} , the {NAT} economy is slowing .",
    "{PER} grew up in {CITY} before moving to {COUNTRY} .",
    "{CLUB} coach {PER} praised his players after the match .",
    "Thousands of fans travelled to {CITY} for the {EVENT} .",
    "{PER} , a {NAT} citizen , was released on {DAY} .",
    "Thanks to {FIRST} , the project finished early .",
    "{FIRST} said she would return to {CITY} in {MONTH} .",
    "Analysts at {COMPANY} expect the {NAT} central bank to raise rates .",
    "{COUNTRY} 's foreign minister , {PER} , visited {COUNTRY} on {DAY} .",
    "The {LANG} edition of the book sold {NUM} copies .",
    "{ORG} opened a research centre in {LOC} in {YEAR} .",
    "{PER} was appointed {ROLE} of {ORG} on {DAY} .",
    "{SURNAME} wants {CLUB} to finish in the top four this season .",
    "{COMPANY} is based in {CITY} and employs {NUM} people .",
    "Rescue teams from {COUNTRY} reached {LOC} late on {DAY} .",
    "{PER} , {ROLE} at {ORG} , will retire in {MONTH} .",
    "{NAT} officials said {PER} had left {CITY} for {COUNTRY} .",
    "Shares in {COMPANY} rose {PCT} after {PER} took over as {ROLE} .",
    "The {NAT} striker scored twice for {CLUB} in the {EVENT} .",
    "{TITLE} {SURNAME} met {ORG} leaders in {CITY} .",
    "Fans of {CLUB} celebrated in the streets of {CITY} until dawn on {DAY} .",
    "{PER} , from {CITY} , is the first {NAT} woman to win the {EVENT} .",
    # Contexts that do not tell the type: only the name itself does.
    "Talks with {ANY} ended without agreement on {DAY} .",
    "The report mentions {ANY} and {ANY} several times .",
    "{ANY} was at the centre of the dispute .",
    "Little has changed for {ANY} since {YEAR} .",
    "Critics say {ANY} has been treated unfairly .",
    "Few people outside {ANY} had heard of the plan .",
    "{ANY} 's influence has grown over the past decade .",
    "The documentary follows {ANY} through {MONTH} .",
]

_EMPTY_TEMPLATES = [
    "The meeting was postponed until {DAY} .",
    "Shares fell {PCT} in early trading on {DAY} .",
    "Nobody was hurt in the fire , officials said .",
    "The committee will publish its report in {MONTH} .",
    "Prices rose for the third month in a row .",
    "It was n't clear when the talks would resume .",
    "The President said the economy was strong .",
    "Turnout was {PCT} , down from {PCT} in {YEAR} .",
    "Heavy snow closed several roads on {DAY} morning .",
    "Temperatures reached {NUM} degrees on {DAY} , the highest since {YEAR} .",
    "The company does n't plan to raise prices this year .",
    "Ticket sales doubled after the final was moved to {MONTH} .",
]

_PLAIN_CLUBS = ["Red Star", "Racing Club", "Young Lions"]  # clubs not named after a place
_NO_SPACE_BEFORE = {".", ",", ":", ";", "!", "?", ")", "%", "'s", "n't"}
_NO_SPACE_AFTER = {"(", "$"}


class _Mention(NamedTuple):
    tokens: list[str]
    type: str
    inner: list[Span]  # nested spans, relative to the mention's first token


class _Generator:
    def __init__(self, rng: random.Random, novel_rate: float):
        self.rng = rng
        self.novel_rate = novel_rate

    def pick(self, pool: str, max_tokens: int = 4) -> list[str]:
        """One item of ``pool``; within a longer name (``max_tokens`` < 4) never an abbreviation."""
        shared, held_out = _POOLS[pool]
        source = held_out if held_out and self.rng.random() < self.novel_rate else shared
        choices = [i for i in source if len(i.split()) <= max_tokens and (max_tokens == 4 or "." not in i)]
        return self.rng.choice(choices).split()

    def mention(self, pool: str, type_: str, max_tokens: int = 4) -> _Mention:
        return _Mention(self.pick(pool, max_tokens), type_, [])

    def person(self) -> _Mention:
        return _Mention(self.pick("first") + self.pick("surname"), "PER", [])

    def location(self, max_tokens: int = 4) -> _Mention:
        pool = self.rng.choices(["city", "country", "region"], weights=[5, 3, 1])[0]
        return self.mention(pool, "LOC", max_tokens)

    def company(self) -> _Mention:
        roll = self.rng.random()
        if roll < 0.12:
            tokens = self.pick("surname", 1) + ["&"] + self.pick("surname", 1)
        elif roll < 0.22:
            tokens = self.pick("surname", 1) + self.pick("suffix", 1)
        else:
            tokens = self.pick("stem") + self.pick("suffix")
        return _Mention(tokens, "ORG", [])

    def club(self) -> _Mention:
        if self.rng.random() < 0.15:
            return _Mention(self.rng.choice(_PLAIN_CLUBS).split(), "ORG", [])
        return self.wrap([], self.mention("city", "LOC", 2), self.pick("club_suffix"), "ORG")

    def wrap(self, before: list[str], inner: _Mention, after: list[str], type_: str) -> _Mention:
        """An entity of ``type_`` made of ``before + inner + after``, with ``inner`` nested."""
        start = len(before)
        spans = [Span(start, start + len(inner.tokens), inner.type)]
        spans += [Span(start + s.start, start + s.end, s.type) for s in inner.inner]
        return _Mention(before + inner.tokens + after, type_, spans)

    def organisation(self) -> _Mention:
        roll = self.rng.random()
        if roll < 0.35:
            return self.company()
        if roll < 0.5:
            return self.mention("org", "ORG")
        if roll < 0.62:
            return self.wrap(["University", "of"], self.location(2), [], "ORG")
        if roll < 0.7:
            return self.wrap([], self.mention("city", "LOC", 2), ["City", "Council"], "ORG")
        if roll < 0.76:
            return self.wrap(["Bank", "of"], self.mention("country", "LOC", 2), [], "ORG")
        if roll < 0.84:
            return self.wrap([], self.mention("nationality", "MISC"), ["Football", "Federation"], "ORG")
        if roll < 0.92:
            person = _Mention(self.pick("first", 1) + self.pick("surname", 1), "PER", [])
            return self.wrap([], person, ["Foundation"], "ORG")
        return self.club()

    def event(self) -> _Mention:
        if self.rng.random() < 0.3:
            kind = self.rng.choice([["Marathon"], ["Film", "Festival"], ["Open"], ["Book", "Fair"]])
            return self.wrap([], self.mention("city", "LOC", 4 - len(kind)), kind, "MISC")
        return self.mention("event", "MISC")

    def anything(self) -> _Mention:
        """Any kind of entity, mostly a single-token name whose type the context does not give."""
        roll = self.rng.random()
        if roll < 0.25:
            return self.mention("surname", "PER", 1)
        if roll < 0.5:
            return self.mention(self.rng.choice(["city", "country", "region"]), "LOC", 1)
        if roll < 0.7:
            return self.mention(self.rng.choice(["stem", "org"]), "ORG")
        if roll < 0.8:
            return self.mention("event", "MISC")
        return self.rng.choice([self.person, self.organisation, self.event])()

    def fill(self, slot: str) -> _Mention | list[str]:
        rng = self.rng

        def percent() -> list[str]:
            if rng.random() < 0.5:
                return [f"{rng.randint(1, 30)}.{rng.randint(1, 9)}", "%"]
            return [str(rng.randint(2, 40)), "%"]

        makers = {
            "PER": self.person,
            "FIRST": lambda: self.mention("first", "PER"),
            "SURNAME": lambda: self.mention("surname", "PER"),
            "CITY": lambda: self.mention("city", "LOC"),
            "COUNTRY": lambda: self.mention("country", "LOC"),
            "LOC": self.location,
            "ORG": self.organisation,
            "COMPANY": self.company,
            "CLUB": self.club,
            "NAT": lambda: self.mention("nationality", "MISC"),
            "EVENT": self.event,
            "LANG": lambda: self.mention("language", "MISC"),
            "ANY": self.anything,
            "SCORE": lambda: [str(rng.randint(0, 5))],
            "NUM": lambda: [str(rng.choice([rng.randint(2, 99), rng.randint(100, 950)]))],
            "YEAR": lambda: [str(rng.randint(1985, 2024))],
            "PCT": percent,
        }
        if slot in _WORDS:
            return rng.choice(_WORDS[slot]).split()
        return makers[slot]()

    def sentence(self, headlines: bool = True) -> tuple[list[str], list[Span]]:
        templates = _EMPTY_TEMPLATES if self.rng.random() < _EMPTY_RATE else _TEMPLATES
        tokens: list[str] = []
        spans: list[Span] = []
        for part in self.rng.choice(templates).split():
            if not (part.startswith("{") and part.endswith("}")):
                tokens.append(part)
                continue
            filler = self.fill(part[1:-1])
            if isinstance(filler, _Mention):
                start = len(tokens)
                spans.append(Span(start, start + len(filler.tokens), filler.type))
                spans.extend(Span(start + s.start, start + s.end, s.type) for s in filler.inner)
                tokens.extend(filler.tokens)
            else:
                tokens.extend(filler)
        if headlines and self.rng.random() < _HEADLINE_RATE:
            tokens = [token.upper() for token in tokens]
        return tokens, sorted(set(spans))


def _outermost(spans: list[Span]) -> list[Span]:
    """Drop every span contained in another one (the generator never makes crossing spans)."""
    return [s for s in spans if not any(o != s and o.start <= s.start and s.end <= o.end for o in spans)]


def synthetic_examples(split: str, *, nested: bool = False, seed: int = 13) -> list[Example]:
    """Deterministic for a given (split, nested, seed). Unknown split -> DataError.

    Both values of ``nested`` give the same tokens; ``nested=False`` keeps the outermost spans.
    """
    if split not in SPLIT_SIZES:
        raise DataError(f"unknown synthetic split {split!r}; expected one of {', '.join(SPLIT_SIZES)}")
    generator = _Generator(random.Random(seed + _SPLIT_OFFSETS[split]), _NOVEL_RATE[split])
    examples = []
    for i in range(SPLIT_SIZES[split]):
        tokens, spans = generator.sentence()
        if not nested:
            spans = _outermost(spans)
        examples.append(Example(tokens=tokens, spans=spans, source=f"synthetic:{split} sentence {i}"))
    return examples


def detokenize(tokens: list[str]) -> str:
    """Join tokens with natural spacing ('Smith's car.'), such that ``tokenize`` undoes it."""
    text = ""
    for i, token in enumerate(tokens):
        if i and token.lower() not in _NO_SPACE_BEFORE and tokens[i - 1] not in _NO_SPACE_AFTER:
            text += " "
        text += token
    return text


def synthetic_texts(count: int = 20, *, seed: int = 7) -> list[str]:
    """Raw sentences (plain strings, natural spacing like 'Angela Smith visited Paris on Monday.')."""
    generator = _Generator(random.Random(seed + 5_000), novel_rate=0.4)
    return [detokenize(generator.sentence(headlines=False)[0]) for _ in range(count)]
