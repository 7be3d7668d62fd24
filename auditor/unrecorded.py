"""The records without a msg_id that runs of a state written before the `unidentified` table
archived, read back from their bags for the second look at their hours.

A record without a msg_id is known by its content alone, which the state's `unidentified` table
keeps for each run since it was added (commit bb1ad66, with the second look itself). A state an
earlier version wrote gains the table empty: the second look at the last hours its runs fetched
found none of their records without a msg_id there, took each for one that reached the source
late, and archived it again (probe months25 #3). Those runs are the completed ones without a
settled end (`settled_until_ms`, which every run sets since that commit) and not rebuilt (a
rebuild fills the table from the bags); their bags tell what they archived from an hour.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path, PurePath

from auditor.archive import layout
from auditor.archive.baginfo import parse_bag_info
from auditor.archive.lines import record_bytes
from auditor.archive.untrusted import TAG_FILE_LIMIT, read_bag_file
from auditor.errors import ConfigError
from auditor.partitions import Partition, parse_hour_timezone
from auditor.records import msg_id
from auditor.sources.settle import content_sha256


def unrecorded_runs(db: sqlite3.Connection) -> list[tuple[int, int, str]]:
    """`(since_ms, until_ms, bag name)` of the runs whose records without a msg_id the state's
    `unidentified` table does not hold."""
    # imported here: the rebuild's verifying modules would add 21 to every run's imports
    from auditor.state_rebuild import REBUILT_DIGEST

    rows = db.execute(
        "SELECT since_ms, until_ms, bag_path FROM runs WHERE status = 'completed'"
        " AND settled_until_ms IS NULL AND config_digest <> ? AND bag_path IS NOT NULL"
        " ORDER BY sequence",
        (REBUILT_DIGEST,),
    )
    return [(since, until, PurePath(bag).name) for since, until, bag in rows]


def anonymous_archived(out_dir: Path, runs: list[tuple[int, int, str]], hour_ms: int) -> set[str]:
    """The contents (as the run's index keys them) of the records without a msg_id that those of
    `runs` whose window holds the hour starting at `hour_ms` archived from it. A bag or line
    that cannot be read adds nothing: the record is then archived again, as before."""
    found: set[str] = set()
    for since, until, bag in runs:
        if since <= hour_ms < until:
            found |= _of_hour(out_dir / bag, hour_ms)
    return found


def _of_hour(bag: Path, hour_ms: int) -> set[str]:
    from auditor.state_rebuild import entity_fields_of

    raw = read_bag_file(bag / layout.BAG_INFO, TAG_FILE_LIMIT)
    if raw is None:
        return set()
    info, _ = parse_bag_info(raw, layout.BAG_INFO)
    try:
        zone = parse_hour_timezone(info.get("Hour-Timezone", "UTC"))
    except ConfigError:
        return set()
    label = Partition(hour_ms).label(zone)
    path = bag / layout.RECORDS / f"{label}{layout.RECORDS_SUFFIX}"
    entity_fields = entity_fields_of(info)
    found: set[str] = set()
    try:
        with path.open("rb") as lines:
            for line in lines:
                line = line.rstrip(b"\n")
                try:
                    record = json.loads(line)["record"]
                except (ValueError, KeyError, TypeError):
                    continue
                if isinstance(record, dict) and msg_id(record) is None:
                    found.add(content_sha256(record, record_bytes(line), entity_fields))
    except OSError:
        return found
    return found
