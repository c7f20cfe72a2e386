"""Insights: what coordinators see about their program (dashboard, charts, exports).

Modules are named by area so that the feedback work (``feedback*.py``, ``signals.py``,
``queue*.py``) and the dashboard work (``dashboard*.py``, ``metrics.py``, ``charts.py``,
``exports*.py``) live side by side without touching each other.
"""
