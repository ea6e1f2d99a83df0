"""Seeded caption sets for the CIDEr tests and benchmarks/metrics.py (loaded there by file path)."""

import random

# Caption words, a few of the lexer's sentence openers ("In", "The", "A"), and one-letter words.
_WORDS = """a a a an the the the of in on on with and to at near by is are two three man woman people dog cat bus
    street kitchen table plate pizza field grass snow water beach train horse giraffe sitting standing riding
    holding walking next top front red white black small large some this that there while one many more""".split()
_LETTERS = list("abcdefghijklmnopqrstuvwxyz") + ["I", "A", "X"]


def word_soup_caption(rng: random.Random) -> str:
    """A caption as a generator cut off by max_new_tokens leaves it: plain words, maybe capitalized, maybe a period."""
    words = [rng.choice(_LETTERS) if rng.random() < 0.08 else rng.choice(_WORDS) for _ in range(rng.randint(1, 16))]
    words = [w.capitalize() if rng.random() < (0.6 if k == 0 else 0.05) else w for k, w in enumerate(words)]
    text = " ".join(words)
    roll = rng.random()
    if roll < 0.45:
        text += "."
    elif roll < 0.5:
        text += " ."
    return text


def word_soup(images: int, refs_per_image: int, seed: int) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Predictions and references of word-soup captions, keyed by image ids that are not in sorted order."""
    rng = random.Random(seed)
    ids = rng.sample(range(10 * images), images)
    predictions = {i: word_soup_caption(rng) for i in ids}
    references = {i: [word_soup_caption(rng) for _ in range(refs_per_image)] for i in ids}
    return predictions, references
