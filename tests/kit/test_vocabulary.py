"""One name per concept in what people read: the person a brand serves is 客户 on every
page, reply, error and reason (the desk once said 顾客要求转人工 where the queue said
客户要求转人工)."""

from __future__ import annotations

from pathlib import Path

import siyu

# Words that name a concept siyu already names otherwise, and the name to use instead.
SYNONYMS = {"顾客": "客户"}


def test_the_customer_is_called_by_one_name_everywhere() -> None:
    root = Path(siyu.__file__).parent
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in {".py", ".html", ".js", ".json", ".yaml", ".txt"}:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{path.relative_to(root)}:{number}: {word} (use {use})"
                      for word, use in SYNONYMS.items() if word in line]
    assert not found, "\n".join(found)
