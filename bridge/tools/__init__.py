"""Hand-run tools: ``vadbridge send``, ``replay`` and ``preview`` (the command layer)."""
