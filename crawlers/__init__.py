"""Crawlers: Scrapy spiders and feedparser readers that turn EU sources into ``NoticeRecord``s.

``crawlers.run.crawl`` is the API (the CLI and the scheduler call it); ``crawlers/parsers`` holds the
pure bytes -> records functions; ``crawlers/spiders`` one spider per source kind.
"""
