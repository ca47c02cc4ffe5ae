"""Writes split files for this corpus as the paper's authors' filesplit.py
does for LAVA (their method, re-implemented for the test fixture): readings
that contrast are grouped (a reading joins a group whose founder it names in
contrastVariants), entries without a syntactic_tree are dropped, a missing
visualFilename or logicalForm comes from the first equivalent variant, groups
of three give their three 2-combinations, the pairs are combined k at a time,
shuffled and cut 70/10/20 into train.json, val.json and tst.json.

    python3 make_splits.py 1 splits-k1
    python3 make_splits.py 2 splits-k2
"""
import itertools
import json
import os
import random
import sys


def main():
    k, out = int(sys.argv[1]), sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    entries = json.load(open(os.path.join(here, "lava.json")))
    by_id = {"%s,%s" % (e["sentenceID"], e["variantID"]): e for e in entries}
    groups = {}
    for e in entries:
        if "syntactic_tree" not in e:
            continue
        first = by_id[e["equivalentVariants"][0]] if e["equivalentVariants"] else {}
        reading = {
            "text": e["text"],
            "constree": e["syntactic_tree"],
            "vision": e.get("visualFilename", first.get("visualFilename")),
            "sem": e.get("logicalForm", first.get("logicalForm")),
        }
        founders = [c for c in e["contrastVariants"] if c in groups]
        if founders:
            groups[founders[0]].append(reading)
        else:
            groups["%s,%s" % (e["sentenceID"], e["variantID"])] = [reading]
    pairs = [g for g in groups.values() if len(g) == 2]
    for g in groups.values():
        if len(g) == 3:
            pairs += [list(c) for c in itertools.combinations(g, 2)]
    items = list(itertools.combinations(pairs, k))
    random.seed(k)
    random.shuffle(items)
    n = len(items)
    os.makedirs(os.path.join(here, out), exist_ok=True)
    for name, part in (("train.json", items[: int(0.7 * n)]),
                       ("val.json", items[int(0.7 * n): int(0.8 * n)]),
                       ("tst.json", items[int(0.8 * n):])):
        with open(os.path.join(here, out, name), "w") as f:
            json.dump(part, f)


main()
