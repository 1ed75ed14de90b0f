"""Crawlers: Scrapy spiders and feedparser readers that turn EU sources into ``NoticeRecord``s.

``crawlers.run.fetch`` is the API (``veille.crawl`` calls it, then stores); ``crawlers/parsers`` holds the
pure bytes -> records functions; ``crawlers/spiders`` one spider per source kind.
"""
