"""Where runs are written: the collector and its background writer, redaction, pricing.

Loaded by `import kagura` (the agent records through the collector), so this package
and its modules import nothing heavy at import time.
"""
