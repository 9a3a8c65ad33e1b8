"""Netlink encoders for qdiscs, in pyroute2's plugin style (one module per qdisc kind)."""
