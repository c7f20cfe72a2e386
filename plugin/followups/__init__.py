"""Follow-ups: rules derive which messages must exist, a planner stores them under dedupe
keys, a dispatcher sends due ones once over a channel (e-mail now; in-app at merge).

See docs/followups.md for the guarantees and the extension points.
"""
