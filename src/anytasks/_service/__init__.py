"""``anytasks run`` and ``anytasks demo``: the command line, the service runner, what it runs
(``MODULE:OBJECT``), its health file, and the demo."""
