"""Meetings: scheduling, micro-mentoring slots, availability, calendar sync intents, ICS feeds.

Services take a ``Session`` and plain values and never touch the request; every change to a
meeting bumps its version and writes its calendar sync intents in the caller's
transaction (:mod:`plugin.meetings.sync`), and the sync jobs are queued only after commit.
"""
