"""Mentorship programs: enrollment, profiles, relationships, goals, circles (views + services).

Services take a ``Session`` and plain values and never touch the request; views parse,
call a service and render. :mod:`plugin.programs.access` is the one place that decides who
may open a program and with which program roles.
"""
