"""The answer normalization of the official VQA evaluation (GT-Vision-Lab/VQA vqaEval.py), and EvalAI's.

The tables are the official ones (BSD-2, Aishwarya Agrawal), quirks included, because published
VQA numbers depend on them: e.g. "somebody'd" maps to "somebodyd" and the capitalised keys can
never match after lower-casing.
"""

import re

_CONTRACTIONS_TEXT = """
aint:ain't arent:aren't cant:can't couldve:could've couldnt:couldn't couldn'tve:couldn't've
couldnt've:couldn't've didnt:didn't doesnt:doesn't dont:don't hadnt:hadn't hadnt've:hadn't've
hadn'tve:hadn't've hasnt:hasn't havent:haven't hed:he'd hed've:he'd've he'dve:he'd've hes:he's howd:how'd
howll:how'll hows:how's Id've:I'd've I'dve:I'd've Im:I'm Ive:I've isnt:isn't itd:it'd itd've:it'd've
it'dve:it'd've itll:it'll let's:let's maam:ma'am mightnt:mightn't mightnt've:mightn't've
mightn'tve:mightn't've mightve:might've mustnt:mustn't mustve:must've neednt:needn't notve:not've
oclock:o'clock oughtnt:oughtn't ow's'at:'ow's'at 'ows'at:'ow's'at 'ow'sat:'ow's'at shant:shan't
shed've:she'd've she'dve:she'd've she's:she's shouldve:should've shouldnt:shouldn't shouldnt've:shouldn't've
shouldn'tve:shouldn't've somebody'd:somebodyd somebodyd've:somebody'd've somebody'dve:somebody'd've
somebodyll:somebody'll somebodys:somebody's someoned:someone'd someoned've:someone'd've
someone'dve:someone'd've someonell:someone'll someones:someone's somethingd:something'd
somethingd've:something'd've something'dve:something'd've somethingll:something'll thats:that's thered:there'd
thered've:there'd've there'dve:there'd've therere:there're theres:there's theyd:they'd theyd've:they'd've
they'dve:they'd've theyll:they'll theyre:they're theyve:they've twas:'twas wasnt:wasn't wed've:we'd've
we'dve:we'd've weve:we've werent:weren't whatll:what'll whatre:what're whats:what's whatve:what've
whens:when's whered:where'd wheres:where's whereve:where've whod:who'd whod've:who'd've who'dve:who'd've
wholl:who'll whos:who's whove:who've whyll:why'll whyre:why're whys:why's wont:won't
wouldve:would've wouldnt:wouldn't wouldnt've:wouldn't've wouldn'tve:wouldn't've yall:y'all yall'll:y'all'll
y'allll:y'all'll yall'd've:y'all'd've y'alld've:y'all'd've y'all'dve:y'all'd've youd:you'd
youd've:you'd've you'dve:you'd've youll:you'll youre:you're youve:you've
"""
CONTRACTIONS: dict[str, str] = dict(pair.split(":") for pair in _CONTRACTIONS_TEXT.split())

_NUMBER_WORDS = "none zero one two three four five six seven eight nine ten".split()
DIGITS: dict[str, str] = {word: str(max(0, i - 1)) for i, word in enumerate(_NUMBER_WORDS)}
ARTICLES = frozenset({"a", "an", "the"})

PUNCTUATION = ';/[]"{}()=+\\_-><@`,?!'
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
# The official code passes re.UNICODE (== 32) where re.sub expects `count`, so at most 32
# periods are removed from an answer; we keep that limit to match it exactly.
_PERIOD_LIMIT = 32
_DELETE_ALL = str.maketrans("", "", PUNCTUATION)


def strip_layout(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(text: str) -> str:
    if _DIGIT_COMMA_DIGIT.search(text) is not None:
        out = text.translate(_DELETE_ALL)
    else:
        # A mark touching a space is deleted, one inside a word becomes a space ("n/a" -> "n a").
        table = {
            ord(mark): "" if (mark + " " in text or " " + mark in text) else " "
            for mark in set(text).intersection(PUNCTUATION)
        }
        out = text.translate(table) if table else text
    if "." in out:
        out = _PERIOD_NOT_BEFORE_DIGIT.sub("", out, _PERIOD_LIMIT)
    return out


def process_digit_article(text: str) -> str:
    words = []
    for word in text.lower().split():
        word = DIGITS.get(word, word)
        if word not in ARTICLES:
            words.append(CONTRACTIONS.get(word, word))
    return " ".join(words)


def normalize(text: str) -> str:
    """Full normalization of one answer: layout, punctuation, then number words, articles, contractions."""
    return process_digit_article(process_punctuation(strip_layout(text)))


def normalize_evalai(text: str) -> str:
    """EvalAI's answer processing (TextVQA's m4c evaluator), applied to predictions and human answers alike.

    It first lower-cases, deletes every comma and question mark and splits off "'s"; then it is the full
    normalization. With the commas gone, the digit-comma-digit rule can never fire, as in EvalAI's code.
    """
    return normalize(text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip())
