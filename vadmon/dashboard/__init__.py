"""What the operator sees: the live terminal dashboard, service-mode log lines, Prometheus."""
