"""Print only the TRAIN split of the development set (rules are written from these; test stays unseen)."""

import sys

from nlp.dataset import DEV_SET, load_dataset, split

train, test = split(load_dataset(DEV_SET))
print(f"# train {len(train)} items, test {len(test)} items (test not shown)", file=sys.stderr)
label = sys.argv[1] if len(sys.argv) > 1 else None
for it in train:
    if label and (label not in it.labels if label != "none" else it.labels):
        continue
    nm = " NM" if it.near_miss else ""
    print(
        f"{it.id} [{','.join(it.labels)}]{nm} {it.source} {it.lang} {it.celex or ''} | {it.title[:200]} || {it.summary[:160]}"  # noqa: E501
    )
