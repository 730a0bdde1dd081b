"""How much input drill accepts before it refuses: bad input must never cost memory or time.

Every definition drill reads (a drill file, the experiment it runs, any future catalog) is read and parsed
within these bounds, and every text field and list in the model is capped. The bounds are a hundred to a
thousand times what a real drill needs, so only hostile or broken input ever meets them; meeting one is an
error naming the file, the field and the limit, never a hang, a traceback or a gigabyte of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

_KIB = 1024
_MIB = 1024 * _KIB


@dataclass(frozen=True, kw_only=True)
class InputLimits:
    """Bounds on reading and parsing definition files, and on the size of their fields.

    Files:

    ``drill_file_bytes``: 1 MiB. The shipped drills are about 1.5 KiB; a drill is a page of YAML that
    people review, and 1 MiB of YAML already costs about a second of parsing on a slow machine.
    ``experiment_file_bytes``: 4 MiB. Chaos Toolkit experiments are JSON or YAML, often generated, with
    inline provider arguments; real ones are tens of KiB.

    Structure (checked while the YAML is composed or after the JSON is decoded, never by recursion):

    ``max_depth``: 64 levels of nesting. Real drills nest about 6 deep, experiments about 8; Python's own
    recursion limit (1,000 frames) is what deeper input would hit, as a traceback.
    ``drill_nodes`` / ``experiment_nodes``: 10,000 / 50,000 values once aliases are expanded (each mapping,
    list and scalar counts one). A full drill is about 100; an experiment with the maximum of activities
    holds about 50 values each. This is what makes "billion laughs" (aliases of aliases) cost milliseconds:
    the count grows with every alias as it would once expanded, and composition stops at the limit.
    ``aliases``: 200 alias uses (``*name``) per file: reuse of a few anchors works, alias chains do not.

    Content:

    ``activities``: 1,000 activities in an experiment (method + rollbacks + steady-state probes). A drill's
    experiment injects one fault; a thousand steps is already a script, not a drill.
    ``name_chars``: 64 characters for names (participants, policies, probes): they are typed in commands
    (``drill ack RUN --as alice``) and shown in one-line timelines.
    ``text_chars``: 4,000 characters for descriptions, hints and reasons: a few paragraphs, shown in a
    terminal and a report.
    ``path_chars``: 4,096, the longest path Linux accepts (PATH_MAX).
    ``participants`` / ``policies`` / ``hints`` / ``abort_probes`` / ``blackouts`` / ``labels`` /
    ``configuration_entries``: 100 / 50 / 100 / 20 / 100 / 64 / 200 items: each list is read by people
    during a drill.
    ``max_errors``: 20 errors reported per file; the rest are counted, so a broken generated file prints a
    screen, not a megabyte.
    """

    drill_file_bytes: int = 1 * _MIB
    experiment_file_bytes: int = 4 * _MIB
    max_depth: int = 64
    drill_nodes: int = 10_000
    experiment_nodes: int = 50_000
    aliases: int = 200
    activities: int = 1_000
    name_chars: int = 64
    text_chars: int = 4_000
    path_chars: int = 4_096
    participants: int = 100
    policies: int = 50
    namespaces: int = 1000  # a cluster-wide no-automation day spans hundreds of namespaces
    hints: int = 100
    abort_probes: int = 20
    blackouts: int = 100
    labels: int = 64
    configuration_entries: int = 200
    max_errors: int = 20


LIMITS = InputLimits()
