"""Searching output for identifying values."""
import re


def occurring(needles, text):
    """The needles that occur in `text` as whole words: not inside a longer run of word
    characters or hyphens. One pass over the text for the needles that are such runs themselves,
    a search only for the others (names with spaces, phone numbers with punctuation)."""
    tokens = set(re.findall(r"[\w-]+", text))
    plain = re.compile(r"[\w-]+")
    return sorted(n for n in needles if (n in tokens if plain.fullmatch(n) else
                                         re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)))
