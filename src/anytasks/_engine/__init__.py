"""The engine: one run of a loop, its position on its schedule, and what they stand on.

``record`` is what a :class:`~anytasks.Loop` and its run share; ``run`` is one run, from its
start to its end (restarts included); ``position`` is where a run, or a ``ticks()`` iterator,
stands on its schedule, and does the waits. ``options`` is a loop's settings as one frozen
value, ``hooks`` its hooks as another. ``state``, ``backend``, ``cancellation``, ``retry``,
``handled`` and ``exclusive`` are what a run stands on: its states, the backend's primitives,
cancellation as a loop sees it, retries and what they retry, and the lease of an exclusive
loop.
"""
