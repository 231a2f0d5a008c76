#!/usr/bin/env python3
"""Pairwise precision, recall and F1 of a resolved partition against a ground truth.
    tools/pairwise_f1.py TRUTH.csv EXPORT.csv
TRUTH.csv is `identifier,person` (idgraph generate --truth), EXPORT.csv is `identifier,entity`
(idgraph export). Only identifiers in the truth count. A pair of identifiers is predicted when
both are in one entity, true when both belong to one person."""
import csv
import sys
from collections import Counter


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)
        return {identifier: group for identifier, group in rows}


def pairs(n):
    return n * (n - 1) // 2


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    truth, predicted = load(sys.argv[1]), load(sys.argv[2])
    # Identifiers of the truth that the export left out (erased, or never seen) stand alone.
    cells = Counter((predicted.get(i, "alone:" + i), person) for i, person in truth.items())
    clusters = Counter(predicted.get(i, "alone:" + i) for i in truth)
    people = Counter(truth.values())
    true_positive = sum(pairs(n) for n in cells.values())
    predicted_pairs = sum(pairs(n) for n in clusters.values())
    true_pairs = sum(pairs(n) for n in people.values())
    precision = true_positive / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    largest = max(clusters.values()) if clusters else 0
    print(f"identifiers {len(truth)}  people {len(people)}  entities {len(clusters)}  largest entity {largest}")
    print(f"pairwise precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}")


if __name__ == "__main__":
    main()
