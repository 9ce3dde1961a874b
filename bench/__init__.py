"""tensorforge benchmark suites (run them with ``python -m tensorforge bench`` or ``python bench/run.py``)."""
