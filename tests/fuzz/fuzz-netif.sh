#!/bin/bash
# make check: the netif fuzz target, bounded (see fuzz-bounded.sh).
exec bash "$(dirname "$0")/fuzz-bounded.sh" netif
