"""The drill archive: finished runs stored immutably with checksums (``storing``), an index over them in
the journal's kind of store (``indexing``), and a seeded synthetic archive for tests, benchmarks and demos
(``generating``). Sits above ``reporting`` (it stores reports) and below ``run`` and ``cli``.
"""
