"""The workpulse monitoring mixin: Grafana dashboards, Prometheus alert and recording
rules, generated from one place (`config.py` holds every threshold and `for:`).

`python -m mixin` (or `make mixin`) writes dashboards/*.json and
deploy/prometheus/workpulse.rules.yml; `python -m mixin --check` fails when the
committed files differ from what the code generates.
"""
