"""Real English->German sentence pairs from the gettext catalogs a Debian machine carries.

    python -m benchmarks.gettext_corpus /tmp/ende      # writes text2text_tmpdir's files

Each /usr/share/locale/de/LC_MESSAGES/*.mo catalog maps English messages (msgid) to their
German translations (msgstr). Empty, plural and context entries (and the header) are dropped
and whitespace is normalised. The split is by catalog, so that no sentence of a held-out
catalog is seen in training: catalogs are assigned to test, eval or train by a hash of their
name, and a train pair whose English or German side also occurs in a held-out catalog is
dropped. The files are those `text2text_tmpdir` reads (inputs.train.txt, targets.train.txt,
inputs.eval.txt, targets.eval.txt) plus inputs.test.txt / targets.test.txt for BLEU.

The .mo format is read here (its header and two tables of (length, offset) pairs are all
there is to it) so that nothing but the standard library is needed.
"""
import glob
import hashlib
import os
import struct
import sys

CATALOG_DIR = "/usr/share/locale/de/LC_MESSAGES"
MAX_CHARS = 200  # longer messages (help texts) are dropped: sentences, not paragraphs
HELD_OUT = {"test": (0, 12), "eval": (12, 18)}  # hash % 100 ranges of held-out catalogs


def read_mo(path):
  """{msgid: msgstr} of a .mo file (bytes decoded as UTF-8; undecodable entries skipped)."""
  with open(path, "rb") as f:
    data = f.read()
  magic = struct.unpack("<I", data[:4])[0]
  endian = "<" if magic == 0x950412DE else ">"
  _, count, originals, translations = struct.unpack(endian + "4I", data[4:20])
  pairs = {}
  for i in range(count):
    olen, ooff = struct.unpack(endian + "2I", data[originals + 8 * i:originals + 8 * i + 8])
    tlen, toff = struct.unpack(endian + "2I",
                               data[translations + 8 * i:translations + 8 * i + 8])
    try:
      msgid = data[ooff:ooff + olen].decode("utf-8")
      msgstr = data[toff:toff + tlen].decode("utf-8")
    except UnicodeDecodeError:
      continue
    pairs[msgid] = msgstr
  return pairs


def clean(msgid, msgstr):
  """(english, german) with whitespace normalised, or None for entries that are not a pair."""
  if not msgid or "\x00" in msgid or "\x04" in msgid or "\x00" in msgstr:
    return None  # the header, plural forms, context entries
  english, german = " ".join(msgid.split()), " ".join(msgstr.split())
  if not english or not german or len(english) > MAX_CHARS or len(german) > MAX_CHARS:
    return None
  return english, german


def split_of(catalog):
  bucket = int(hashlib.sha256(catalog.encode()).hexdigest(), 16) % 100
  for split, (low, high) in HELD_OUT.items():
    if low <= bucket < high:
      return split
  return "train"


def corpus(catalog_dir=CATALOG_DIR):
  """{"train": [(en, de)], "eval": [...], "test": [...]}, or None when there are no catalogs."""
  paths = sorted(glob.glob(os.path.join(catalog_dir, "*.mo")))
  if not paths:
    return None
  splits = {"train": [], "eval": [], "test": []}
  for path in paths:
    name = os.path.basename(path)[:-3]
    seen = set()
    for msgid, msgstr in read_mo(path).items():
      pair = clean(msgid, msgstr)
      if pair and pair not in seen:
        seen.add(pair)
        splits[split_of(name)].append(pair)
  held_out = {side for split in ("eval", "test") for pair in splits[split] for side in pair}
  splits["train"] = [p for p in splits["train"] if p[0] not in held_out and p[1] not in held_out]
  return splits


def write_text2text_files(splits, tmp_dir):
  """Writes inputs/targets.{train,eval,test}.txt into tmp_dir; returns the line counts."""
  os.makedirs(tmp_dir, exist_ok=True)
  counts = {}
  for split, pairs in splits.items():
    for side, index in (("inputs", 0), ("targets", 1)):
      with open(os.path.join(tmp_dir, "%s.%s.txt" % (side, split)), "w", encoding="utf-8") as f:
        f.writelines(pair[index] + "\n" for pair in pairs)
    counts[split] = len(pairs)
  return counts


def main(argv):
  tmp_dir = argv[1] if len(argv) > 1 else "/tmp/t2t_ende_gettext"
  splits = corpus()
  if splits is None:
    print("no gettext catalogs in %s: nothing to write" % CATALOG_DIR)
    return 0
  print(write_text2text_files(splits, tmp_dir), "pairs written to", tmp_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
