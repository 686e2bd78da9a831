"""The runtime: one background event loop per process (``loop``), the CPU budget that keeps the
kernel responsive (``budget``: sans-I/O token bucket), and the registry of running objects."""
