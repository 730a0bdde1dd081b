"""Targets: where a drill runs (the local sandbox now, Kubernetes next) and the suspenders they offer."""
