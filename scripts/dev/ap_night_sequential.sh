#!/bin/bash
# Development harness for issue 7 (not part of make test yet): runs the simulated night in
# /tmp/night_small (skycat-sim night --dir /tmp/night_small) loaded by ap_load.sql into DB $1.
# sequential night: for each visit prepare, insert sources, associate, post
db=$1
psql -q -d $db -v ON_ERROR_STOP=1 -c "CALL skycat.ap_prepare_night('ap', '2026-11-23')"
psql -At -d $db -c "SELECT visit, ra, \"dec\" FROM ap.visit ORDER BY visit" | while IFS='|' read v ra dec; do
  psql -q -d $db -v ON_ERROR_STOP=1 <<SQL || exit 1
CALL skycat.ap_prepare_visit('ap', $v, $ra, $dec);
INSERT INTO ap.dia_source_new SELECT * FROM public.stage WHERE visit = $v;
CALL skycat.ap_associate('ap', $v);
CALL skycat.ap_post_visit('ap', $v);
SQL
done
psql -q -d $db -v ON_ERROR_STOP=1 -c "CALL skycat.ap_post_night('ap', '2026-11-23')"
