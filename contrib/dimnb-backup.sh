#!/bin/sh
# Back up a dimnb data directory while it is in use (see docs/deploy.md, "Backups").
#
#   contrib/dimnb-backup.sh /var/lib/dimnb /var/backups/dimnb
#
# makes /var/backups/dimnb/<UTC time>/ holding a consistent copy, in this order:
#   1. the call-store generation CURRENT names, its base and delta (.wal) (immutable: plain file copies), and CURRENT;
#   2. the archived recordings (files are only ever added; every recording that generation marks
#      available was verified into archive/ before the generation was published);
#   3. the state store last, through SQLite's online backup API (never a file copy of a live WAL database),
#      with the cookie secret and the data directory's settings.
# Whatever the state store mentions that the call store lacks (calls loaded during the backup) comes back
# by loading the same CDR files again after a restore: loading is idempotent.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 DATA_DIR BACKUP_DIR" >&2
    exit 2
fi
data=$1
dest="$2/$(date -u +%Y%m%dT%H%M%SZ)"
python=${PYTHON:-python3}

if [ ! -f "$data/state.sqlite" ] || [ ! -L "$data/calls/CURRENT" ]; then
    echo "$data is not a dimnb data directory" >&2
    exit 1
fi
umask 077
mkdir -p "$dest/calls"

generation=$(readlink "$data/calls/CURRENT")
cp -p "$data/calls/$generation" "$dest/calls/$generation"
if [ -f "$data/calls/$generation.wal" ]; then  # its delta: the base alone is an older state
    cp -p "$data/calls/$generation.wal" "$dest/calls/$generation.wal"
fi
ln -s "$generation" "$dest/calls/CURRENT"

if [ -d "$data/archive" ]; then
    cp -a "$data/archive" "$dest/archive"
fi

"$python" - "$data/state.sqlite" "$dest/state.sqlite" <<'PY'
import sqlite3
import sys

source = sqlite3.connect(sys.argv[1])
target = sqlite3.connect(sys.argv[2])
with target:
    source.backup(target)
target.close()
source.close()
PY
for name in cookie_secret dimnb.json; do
    if [ -f "$data/$name" ]; then cp -p "$data/$name" "$dest/$name"; fi
done
echo "$dest"
