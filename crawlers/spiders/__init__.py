"""One spider per source kind. A kind names its spider by import path (crawlers/kinds/): the crawl child
imports it, nothing else needs Scrapy."""
