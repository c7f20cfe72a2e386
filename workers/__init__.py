"""RQ entry layer: queues, the worker class, thin job functions, the cron schedule.

Dependency direction is workers -> plugin: job functions load ids and call plugin
services; plugin names jobs by dotted path and never imports this package.
"""
