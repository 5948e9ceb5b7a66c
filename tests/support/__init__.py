"""What the tests share besides conftest.py's fixtures, imported as ``support.<module>``
(``tests/`` is on pytest's ``pythonpath``).

- ``backends``: the backends the suite runs on, and markers for tests that run on some only;
- ``paths``: where the repository's parts are, wherever a test file lives;
- ``servers``: the Redis and PostgreSQL servers and the SQLite file of the lease tests;
- ``leases``: a lease store wrapper that cuts a replica off from its store;
- ``replica.py``: one replica process of the fault tests (run as a script, not imported).
"""
