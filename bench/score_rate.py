"""Notices scored per CPU second by the code of another checkout, on the same synthetic notices and model.

    git archive REV | tar -x -C OLD
    VEILLE_HOME=HOME python bench/score_rate.py OLD      # the code before
    VEILLE_HOME=HOME python bench/score_rate.py .        # this checkout

HOME must hold a trained model (bench/nlp.py leaves one). Interleave the two on a shared host: per CPU
second is what stays comparable when the load changes.
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path

root = str(Path(sys.argv[1]).resolve())
sys.path.insert(0, root)

from core.config import load_settings  # noqa: E402
from nlp.rules import active_rules  # noqa: E402
from nlp.scoring import gc_paused, load_model, score_parsed  # noqa: E402
from nlp.text import blank_nlp, parse_notice  # noqa: E402


def main(n: int = 3000) -> None:
    bench = runpy.run_path(root + "/bench/nlp.py", run_name="bench")
    settings = load_settings()
    rules, model = active_rules(settings), load_model(settings)
    blank_nlp()
    notices = bench["synthetic"](n, seed=11)
    for x in notices:
        x.eurovoc = getattr(x, "eurovoc", [])  # older benches made notices without EuroVoc

    def rate(m: object) -> float:
        t = time.process_time()
        with gc_paused():
            score_parsed(rules, m, [parse_notice(x) for x in notices])
        return n / (time.process_time() - t)

    rate(None), rate(model)  # cold pass: new words to stem
    res: dict[str, list[int]] = {"rules only": [], "rules + model": []}
    for _ in range(3):
        res["rules only"].append(round(rate(None)))
        res["rules + model"].append(round(rate(model)))
    print(root, {k: sorted(v) for k, v in res.items()}, "notices per CPU second")


if __name__ == "__main__":
    main()
