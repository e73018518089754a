"""The example configs (YAML), installed as package data of ``vadbridge.presets``: ``vadbridge run``
reads ``default.yaml`` from here when no ``--config`` is given."""
