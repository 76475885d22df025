"""Continuous archiving: ``stream run`` (capture), the segment chain, replay (``restore
--until``), ``stream status`` and ``stream drop``."""
