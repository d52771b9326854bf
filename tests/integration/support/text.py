"""Searching output for identifying values."""
import re

DATE = re.compile(r"\d{4}-\d\d-\d\d")


def occurring(needles, text):
    """The needles that occur in `text` as whole words: not inside a longer run of word
    characters or hyphens. One pass over the text for the needles that are such runs themselves,
    a search only for the others (names with spaces, phone numbers with punctuation). A date
    (a birth date) does not occur as the day of a time other than midnight: the store keeps the
    times of clinical events, and one may fall on some patient's birthday."""
    tokens = set(re.findall(r"[\w-]+", text))
    plain = re.compile(r"[\w-]+")

    def found(n):
        if DATE.fullmatch(n):
            return n in tokens and re.search(
                rf"(?<![\w-]){re.escape(n)}(?![\w-])(?![ T](?!00:00:00)\d\d:\d\d)", text)
        if plain.fullmatch(n):
            return n in tokens
        return re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)

    return sorted(n for n in needles if found(n))
