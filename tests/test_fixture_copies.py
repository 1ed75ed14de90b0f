"""Each recorded payload is kept once: the replay bundle's bodies and the tests' fixtures share no file."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

from tests.replay_server import BUNDLE_BODIES, FIXTURES, IN_BUNDLE, fixture


def test_no_payload_is_both_a_replay_body_and_a_test_fixture():
    where = defaultdict(list)
    for root in (FIXTURES, BUNDLE_BODIES):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            where[hashlib.sha256(path.read_bytes()).hexdigest()].append(str(path.relative_to(root.parent)))
    copies = [paths for paths in where.values() if len(paths) > 1]
    assert not copies, f"byte-identical copies (keep one; tests/replay_server.IN_BUNDLE maps to the bundle): {copies}"


def test_fixtures_kept_in_the_bundle_are_read_under_their_fixture_names():
    for rel, name in IN_BUNDLE.items():
        assert not (FIXTURES / rel).exists() and (BUNDLE_BODIES / name).is_file(), rel
    odp = json.loads(fixture("ep_odp/odp_procedure_2025-0581.json"))
    assert odp["data"][0]["id"] == "eli/dl/proc/2025-0581" and odp["data"][0]["process_id"] == "2025-0581"
