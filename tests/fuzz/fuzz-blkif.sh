#!/bin/bash
# make check: the blkif fuzz target, bounded (see fuzz-bounded.sh).
exec bash "$(dirname "$0")/fuzz-bounded.sh" blkif
