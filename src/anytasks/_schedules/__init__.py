"""Schedules as values, and the pure decisions about them: nothing here reads a clock or sleeps.

A schedule is a small immutable value with one pure method, ``next_after(after)``
(`protocol`): intervals (`every`), times of day (`daily`), cron expressions (`cron`, the one
kind that needs a library) and unions of them (`union`). `missed` decides what happens to
slots a loop could not start on time, and where jitter puts a run; `preview` lists run times.
DST changes, long gaps and suspends are all tested without waiting.
"""
