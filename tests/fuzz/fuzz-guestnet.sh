#!/bin/bash
# make check: the guestnet fuzz target, bounded (see fuzz-bounded.sh).
exec bash "$(dirname "$0")/fuzz-bounded.sh" guestnet
