#!/usr/bin/env python3
"""Generate Sources/SentimentCore/Tokenizer/UnicodeTableData.swift.

The tables are *measured* from the reference implementation, Hugging Face `tokenizers`
(the Rust crate behind BertTokenizerFast), one code point at a time, instead of being
derived from Python's `unicodedata`: the crate uses its own Unicode tables (several
crates, several Unicode versions), and we must match the crate, not the standard.

For every scalar value (surrogates excluded) we record:
  REMOVE   BertNormalizer clean_text drops it (NUL, U+FFFD, "other" categories except \\t\\n\\r)
  SPACE    clean_text maps it to ' '
  PUNCT    BertPreTokenizer isolates it ('a' + c + 'a' -> three pieces)
  SPLITWS  BertPreTokenizer splits on it and removes it
  MN       strip_accents drops it (after NFD)
  CJK      handle_chinese_chars pads it with spaces
and the maps:
  NFD      full canonical decomposition (NFD normalizer), Hangul syllables excluded (algorithmic)
  CCC      canonical combining class, found by asking the crate's NFD how it reorders the
           code point against marks of each class (candidates from unicodedata, each checked)
  LOWER    what the lowercase step maps it to (Rust char::to_lowercase, possibly 2 chars)
Then the generator re-simulates the whole normalizer + pre-tokenizer on every single code
point, and on random strings of interesting code points, from these tables only, and stops
if anything disagrees with the library.

Usage: python3 tools/make_tokenizer_tables.py [output.swift]
"""
import random
import sys
import unicodedata
from pathlib import Path

import tokenizers
from tokenizers import normalizers as N, pre_tokenizers as P

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "Sources/SentimentCore/Tokenizer/UnicodeTableData.swift"

REMOVE, SPACE, PUNCT, SPLITWS, MN, CJK = 1, 2, 4, 8, 16, 32

def scalars():
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        yield cp

def bert(clean=False, chinese=False, strip=False, lower=False):
    return N.BertNormalizer(clean_text=clean, handle_chinese_chars=chinese, strip_accents=strip, lowercase=lower)

clean_n = bert(clean=True)
chinese_n = bert(chinese=True)
strip_n = bert(strip=True)
lower_n = bert(lower=True)
nfd_n = N.NFD()
full_n = N.BertNormalizer()  # the default: clean, chinese, strip_accents=None (follows lowercase), lowercase
pre = P.BertPreTokenizer()

def is_hangul_syllable(cp):
    return 0xAC00 <= cp <= 0xD7A3

def hangul_decompose(cp):
    s = cp - 0xAC00
    l, v, t = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return [l, v] if t == 0x11A7 else [l, v, t]

flags = {}
nfd = {}
lower = {}
print("probing", tokenizers.__version__, file=sys.stderr)
for cp in scalars():
    c = chr(cp)
    f = 0
    r = clean_n.normalize_str(c)
    if r == "":
        f |= REMOVE
    elif r == " ":
        f |= SPACE
    elif r != c:
        raise SystemExit(f"clean_text maps U+{cp:04X} to {r!r}")
    r = chinese_n.normalize_str(c)
    if r == " " + c + " ":
        f |= CJK
    elif r != c:
        raise SystemExit(f"handle_chinese_chars maps U+{cp:04X} to {r!r}")
    pieces = [p for p, _ in pre.pre_tokenize_str("a" + c + "a")]
    if pieces == ["a", c, "a"]:
        f |= PUNCT
    elif pieces == ["a", "a"]:
        f |= SPLITWS
    elif pieces != ["a" + c + "a"]:
        raise SystemExit(f"pre-tokenizer splits U+{cp:04X} as {pieces!r}")
    d = nfd_n.normalize_str(c)
    if d != c:
        ds = [ord(x) for x in d]
        if is_hangul_syllable(cp):
            if ds != hangul_decompose(cp):
                raise SystemExit(f"Hangul U+{cp:04X} decomposes to {ds}")
        else:
            nfd[cp] = ds
    else:
        if strip_n.normalize_str(c) == "":
            f |= MN
    l = lower_n.normalize_str(c)
    if l != c:
        lower[cp] = [ord(x) for x in l]
    flags[cp] = f

# Every decomposition must consist of NFD-stable scalars, and strip must agree with MN flags.
for cp, ds in nfd.items():
    for x in ds:
        if x in nfd or is_hangul_syllable(x):
            raise SystemExit(f"decomposition of U+{cp:04X} is not full")
    want = "".join(chr(x) for x in ds if not flags[x] & MN)
    got = strip_n.normalize_str(chr(cp))
    if got != want:
        raise SystemExit(f"strip of U+{cp:04X}: {got!r} != {want!r}")

# Canonical combining classes, as the crate's NFD sees them. A mark m after a starter moves in front
# of the mark before it iff 0 < ccc(m) < ccc(previous); that is all we can observe, and all we need.
def reorders(first, second):
    """Does NFD swap `first second` (after a starter)?"""
    if first == second:
        return False
    return nfd_n.normalize_str("a" + chr(first) + chr(second)) == "a" + chr(second) + chr(first)

LOW, HIGH = 0x0334, 0x0345  # ccc 1 and ccc 240 since Unicode 1.1

def nonzero(cp):
    return reorders(cp, LOW) or reorders(HIGH, cp) or (
        unicodedata.combining(chr(cp)) == 1 and not reorders(cp, HIGH) and reorders(HIGH, cp))

stable = [cp for cp in scalars() if cp not in nfd and not is_hangul_syllable(cp)]
marks = [cp for cp in stable if nonzero(cp) or cp == LOW]
# One representative per class: the lowest code point unicodedata puts in that class that the crate also
# orders consistently with every other representative.
by_class = {}
for cp in marks:
    by_class.setdefault(unicodedata.combining(chr(cp)), []).append(cp)
reps = []  # (class, cp), ascending class
for k in sorted(by_class):
    if k == 0:
        continue
    for cp in by_class[k]:
        if all(reorders(cp, r) and not reorders(r, cp) for _, r in reps):
            reps.append((k, cp))
            break
ccc = {}
for cp in marks:
    equal = [k for k, r in reps if not reorders(cp, r) and not reorders(r, cp)]
    below = [k for k, r in reps if reorders(cp, r)]
    if len(equal) != 1 or (below and max(below) >= equal[0]):
        raise SystemExit(f"cannot place U+{cp:04X}: equal {equal} below {below}")
    ccc[cp] = equal[0]
    if equal[0] != unicodedata.combining(chr(cp)):
        print(f"note: U+{cp:04X} crate ccc {equal[0]}, unicodedata {unicodedata.combining(chr(cp))}", file=sys.stderr)
print(f"{len(ccc)} marks with non-zero ccc, {len(reps)} classes", file=sys.stderr)

# ---------------------------------------------------------------------------------------------
# Simulation from the tables alone (the algorithm the Swift code implements).
def normalize_sim(text, lowercase=True, strip=True, chinese=True):
    out = []
    pending = []

    def flush():
        pending.sort(key=lambda x: ccc.get(x, 0))  # stable
        for x in pending:
            emit(x)
        pending.clear()

    def emit(x):
        if strip and flags[x] & MN:
            return
        if lowercase:
            out.extend(lower.get(x, [x]))
        else:
            out.append(x)

    for ch in text:
        cp = ord(ch)
        f = flags[cp]
        if f & REMOVE:
            continue
        if f & SPACE:
            seq = [0x20]
        elif chinese and f & CJK:
            seq = [0x20, cp, 0x20]
        else:
            seq = [cp]
        for s in seq:
            ds = [s]
            if strip:
                ds = nfd.get(s) or (hangul_decompose(s) if is_hangul_syllable(s) else [s])
            for x in ds:
                if not strip:  # no NFD at all, hence no reordering
                    emit(x)
                elif ccc.get(x, 0) == 0:
                    flush()
                    emit(x)
                else:
                    pending.append(x)
    flush()
    return "".join(chr(x) for x in out)

def pretok_sim(s):
    words, cur = [], []
    for ch in s:
        f = flags[ord(ch)]
        if f & SPLITWS:
            if cur: words.append("".join(cur)); cur = []
        elif f & PUNCT:
            if cur: words.append("".join(cur)); cur = []
            words.append(ch)
        else:
            cur.append(ch)
    if cur: words.append("".join(cur))
    return words

bad = 0
for cp in scalars():
    c = chr(cp)
    want = full_n.normalize_str(c)
    got = normalize_sim(c)
    if got != want:
        bad += 1
        if bad < 20:
            print(f"MISMATCH U+{cp:04X}: lib {want!r} sim {got!r}", file=sys.stderr)
if bad:
    raise SystemExit(f"{bad} single code points disagree")

interesting = [cp for cp in scalars() if flags[cp] or cp in nfd or cp in lower or cp in ccc]
interesting += list(range(0x20, 0x7F)) * 20 + [0xAC00, 0xD7A3, 0xC5D0, 0x1F600, 0x0130, 0x03A3]
rng = random.Random(1234)
configs = [dict(lowercase=True, strip=True), dict(lowercase=True, strip=False), dict(lowercase=False, strip=True),
           dict(lowercase=False, strip=False)]
for trial in range(40000):
    s = "".join(chr(rng.choice(interesting)) for _ in range(rng.randint(1, 12)))
    cfg = configs[trial % 4]
    norm = N.BertNormalizer(lowercase=cfg["lowercase"], strip_accents=cfg["strip"])
    want = norm.normalize_str(s)
    got = normalize_sim(s, **cfg)
    if got != want:
        raise SystemExit(f"string mismatch {cfg} {[hex(ord(x)) for x in s]}: lib {[hex(ord(x)) for x in want]} sim {[hex(ord(x)) for x in got]}")
    wp = [p for p, _ in pre.pre_tokenize_str(want)]
    if wp != pretok_sim(want):
        raise SystemExit(f"pre-tokenizer mismatch {want!r}: {wp!r} vs {pretok_sim(want)!r}")
print("simulation agrees with tokenizers", tokenizers.__version__, file=sys.stderr)

# ---------------------------------------------------------------------------------------------
# Emit. Runs of flags, delta-coded hex; maps as hex entries with delta-coded keys.
runs = []
prev = None
for cp in range(0x110000):
    f = flags.get(cp, REMOVE)  # surrogates cannot occur in a Swift String; give them anything
    if f != prev:
        runs.append((cp, f))
        prev = f

def chunks(s, n=110):
    return [s[i:i + n] for i in range(0, len(s), n)]

def swift_string(name, doc, body):
    lines = chunks(body)
    text = f"    /// {doc}\n    static let {name}: String = \"\"\"\n"
    text += "".join(f"        {ln}\\\n" for ln in lines[:-1]) + f"        {lines[-1]}\n" if lines else ""
    text += "        \"\"\"\n"
    return text

last = 0
parts = []
for cp, f in runs:
    parts.append(f"{cp - last:x}:{f:x}")
    last = cp
run_text = ",".join(parts)

def map_text(m):
    last = 0
    parts = []
    for cp in sorted(m):
        parts.append(f"{cp - last:x}:" + ".".join(f"{x:x}" for x in m[cp]))
        last = cp
    return ",".join(parts)

ccc_runs = []  # (start, length, class) over consecutive code points with the same class
for cp in sorted(ccc):
    if ccc_runs and ccc_runs[-1][0] + ccc_runs[-1][1] == cp and ccc_runs[-1][2] == ccc[cp]:
        s, n, k = ccc_runs[-1]
        ccc_runs[-1] = (s, n + 1, k)
    else:
        ccc_runs.append((cp, 1, ccc[cp]))
last = 0
parts = []
for s, n, k in ccc_runs:
    parts.append(f"{s - last:x}:{n:x}:{k:x}")
    last = s
ccc_text = ",".join(parts)

src = f"""// GENERATED by tools/make_tokenizer_tables.py from tokenizers {tokenizers.__version__}. Do not edit.
//
// Per-code-point behaviour of Hugging Face's BertNormalizer and BertPreTokenizer, measured from the
// library itself (see the script). Hex, delta-coded keys; parsed once by UnicodeTables.swift.
// {len(runs)} flag runs, {len(nfd)} decompositions (+ Hangul, algorithmic), {len(ccc)} non-zero combining classes,
// {len(lower)} lowercase mappings.

enum UnicodeTableData {{
    static let flagRemove: UInt8 = {REMOVE}
    static let flagSpace: UInt8 = {SPACE}
    static let flagPunct: UInt8 = {PUNCT}
    static let flagSplitWhitespace: UInt8 = {SPLITWS}
    static let flagNonspacingMark: UInt8 = {MN}
    static let flagCJK: UInt8 = {CJK}

{swift_string("flagRuns", "`delta:flags` runs; each run lasts until the next one starts.", run_text)}
{swift_string("decompositions", "`delta:d1.d2...` full canonical decompositions (NFD), Hangul syllables excluded.", map_text(nfd))}
{swift_string("combiningClasses", "`delta:count:class` runs of non-zero canonical combining classes.", ccc_text)}
{swift_string("lowercase", "`delta:l1[.l2]` lowercase mappings that differ from the code point.", map_text(lower))}}}
"""
OUT.write_text(src)
print(f"wrote {OUT} ({len(src)} bytes): {len(runs)} runs, {len(nfd)} nfd, {len(ccc)} ccc, {len(lower)} lower", file=sys.stderr)
