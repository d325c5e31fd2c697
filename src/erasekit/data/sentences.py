"""Sentence sets for concept erasure in a text encoder, built from templates.

Every set has a fitting split and a held-out split that shares neither templates nor word
pairs with it, so "held-out paraphrases" really were never seen when fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (male, female) word pairs; sentences differ only in these words
GENDER_PAIRS_FIT = [
    ("he", "she"),
    ("the man", "the woman"),
    ("my father", "my mother"),
    ("my brother", "my sister"),
    ("the king", "the queen"),
    ("my son", "my daughter"),
    ("the boy", "the girl"),
    ("my uncle", "my aunt"),
]
GENDER_PAIRS_HELD_OUT = [
    ("the husband", "the wife"),
    ("the gentleman", "the lady"),
    ("my grandfather", "my grandmother"),
    ("the prince", "the princess"),
]

TEMPLATES_FIT = [
    "{} works as a {}.",
    "{} is a very good {}.",
    "Everyone knows that {} is a {}.",
    "Last year {} became a {}.",
    "{} wants to be a {} one day.",
    "In the village, {} is the only {}.",
    "People say {} is an honest {}.",
    "{} trained for years to become a {}.",
]
TEMPLATES_HELD_OUT = [
    "Yesterday {} met a {} at the station.",
    "{} was praised as a {} by the newspaper.",
    "It is rare that {} is a {} here.",
]

ROLES = ["doctor", "teacher", "farmer", "lawyer", "baker", "pilot", "writer", "engineer", "nurse", "painter", "chef", "singer"]

UNRELATED = [
    "The weather is sunny and warm today.",
    "Prices of coffee rose again this month.",
    "The train leaves at seven in the morning.",
    "Mountains are covered with snow in winter.",
    "This recipe needs two cups of flour.",
    "The river flows slowly through the valley.",
    "Our computer network was down for an hour.",
    "The museum opens a new exhibition on Friday.",
    "Cats often sleep for most of the day.",
    "The bridge was built more than a century ago.",
    "Rain is expected over the weekend.",
    "The library has thousands of old maps.",
    "Solar panels turn sunlight into electricity.",
    "The match ended in a draw after extra time.",
    "Fresh bread smells wonderful in the morning.",
    "The garden is full of red and yellow tulips.",
    "A new road connects the two towns.",
    "The ocean was calm and blue.",
    "This software update fixes several bugs.",
    "The orchestra played a long symphony.",
]


@dataclass(frozen=True)
class SentenceSet:
    sentences: tuple[str, ...]
    labels: np.ndarray  # 0 male, 1 female


def gender_sentences(held_out: bool = False) -> SentenceSet:
    """Sentence pairs differing only in gendered words; ``held_out`` uses unseen templates and pairs."""
    pairs = GENDER_PAIRS_HELD_OUT if held_out else GENDER_PAIRS_FIT
    templates = TEMPLATES_HELD_OUT if held_out else TEMPLATES_FIT
    sentences, labels = [], []
    for template in templates:
        for role in ROLES:
            for male, female in pairs:
                for label, subject in ((0, male), (1, female)):
                    text = template.format(subject, role)
                    sentences.append(text[0].upper() + text[1:])
                    labels.append(label)
    return SentenceSet(tuple(sentences), np.asarray(labels))


# concept terms for the linear-layer edit: first names → "someone"
NAMES = [
    "Oliver",
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "Elijah",
    "Sophia",
    "James",
    "Isabella",
    "William",
    "Mia",
    "Benjamin",
    "Charlotte",
    "Lucas",
    "Amelia",
    "Henry",
    "Harper",
    "Alexander",
    "Evelyn",
    "Mason",
    "Abigail",
    "Michael",
    "Emily",
    "Ethan",
    "Elizabeth",
    "Daniel",
    "Sofia",
    "Jacob",
    "Avery",
    "Logan",
    "Ella",
    "Jackson",
    "Scarlett",
    "Levi",
    "Grace",
    "Sebastian",
    "Chloe",
    "Mateo",
    "Victoria",
    "Jack",
    "Riley",
    "Owen",
    "Aria",
    "Theodore",
    "Lily",
    "Aiden",
    "Aubrey",
    "Samuel",
    "Zoey",
    "Joseph",
    "Penelope",
    "John",
    "Lillian",
    "David",
    "Addison",
    "Wyatt",
    "Layla",
    "Matthew",
    "Natalie",
    "Luke",
    "Camila",
    "Asher",
    "Hannah",
    "Carter",
    "Brooklyn",
    "Julian",
    "Zoe",
    "Grayson",
    "Nora",
    "Leo",
    "Leah",
    "Jayden",
    "Savannah",
    "Gabriel",
    "Audrey",
    "Isaac",
    "Claire",
    "Lincoln",
    "Eleanor",
    "Anthony",
    "Skylar",
    "Hudson",
    "Ellie",
    "Dylan",
    "Samantha",
    "Ezra",
    "Stella",
    "Thomas",
    "Paisley",
    "Charles",
    "Violet",
    "Christopher",
    "Mila",
    "Jaxon",
    "Allison",
    "Maverick",
    "Alexa",
    "Josiah",
    "Anna",
]
NAME_ANCHOR = "someone"
NAME_TEMPLATES_FIT = [
    "Yesterday {} went to the market.",
    "I had lunch with {} on Monday.",
    "{} wrote a long letter to the city council.",
]
NAME_TEMPLATES_HELD_OUT = ["Last night {} called me about the meeting.", "The neighbours say {} moved here in spring."]

UNRELATED_PRESERVE = [
    f"The {thing} was {state} {when}."
    for thing in ("train", "weather", "museum", "river", "library", "bridge", "garden", "market", "computer", "orchestra")
    for state in ("late", "quiet", "crowded", "closed", "beautiful")
    for when in ("this morning", "all week", "again today")
]
