"""Item pipeline: collect each source's NoticeRecords, merge language variants, write them out.

The crawl runs in a child process; this pipeline is how it hands its results to the parent: one
JSON-lines file of records per source, then (last, atomically) a status file. A source whose status
file is missing did not finish, whatever its records file says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler

from core.records import NoticeRecord

LIST_FIELDS = ("related_acts", "legal_basis", "eurovoc", "authors")


def merge_records(old: NoticeRecord | None, new: NoticeRecord) -> NoticeRecord:
    """The same item seen twice in one crawl (EN and FR feeds): fill gaps, union the lists."""
    if old is None:
        return new
    data = old.model_dump()
    for name, value in new.model_dump().items():
        if name in LIST_FIELDS:
            data[name] = list(dict.fromkeys([*data[name], *value]))
        elif name == "extra":
            data[name] = {**value, **data[name]}
        elif data.get(name) in (None, "", "other") and value not in (None, ""):
            data[name] = value
    return NoticeRecord.model_validate(data)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class CollectPipeline:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.out_dir = Path(crawler.settings["VEILLE_OUT_DIR"])
        self.records: dict[str, NoticeRecord] = {}
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CollectPipeline:
        return cls(crawler)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        rec: NoticeRecord = item["record"]
        self.records[rec.external_id] = merge_records(self.records.get(rec.external_id), rec)
        return item

    def spider_closed(self, spider: Spider, reason: str) -> None:
        name = spider.name
        lines = "".join(r.model_dump_json() + "\n" for r in self.records.values())
        write_atomic(self.out_dir / f"{name}.jsonl", lines)
        errors = list(getattr(spider, "errors", []))
        if reason != "finished":
            errors.append(f"collecte arrêtée avant la fin : {reason}")
        stats = self.crawler.stats
        status = {
            "source": name,
            "ok": not errors,
            "error": " ; ".join(dict.fromkeys(errors))[:2000] or None,
            "warnings": (list(getattr(spider, "gap_warnings", list)()) + list(getattr(spider, "warnings", [])))[:50],
            "records": len(self.records),
            "requests": stats.get_value("veille/requests", 0),
            "not_modified": stats.get_value("veille/not_modified", 0),
            "bytes": stats.get_value("veille/bytes", 0),
        }
        write_atomic(self.out_dir / f"{name}.status.json", json.dumps(status))
