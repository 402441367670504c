#!/bin/bash
# Development harness for issue 7 (not part of make test yet): runs the simulated night in
# /tmp/night_small (skycat-sim night --dir /tmp/night_small) loaded by ap_load.sql into DB $1.
# three-phase night: prepare(n+1) || associate(n) || post(n-1) in three sessions, coordinated by visit_log
db=$1
q() { psql -X -q -At -d $db -v ON_ERROR_STOP=1 -c "$1"; }
wait_for() { until [ "$(q "SELECT count(*) FROM ap.visit_log WHERE visit = $1 AND phase = '$2'")" = 1 ]; do sleep 0.05; done; }
q "CALL skycat.ap_prepare_night('ap', '2026-11-23')"
visits=$(q "SELECT visit || ',' || ra || ',' || \"dec\" FROM ap.visit ORDER BY visit")
( for l in $visits; do IFS=, read v ra dec <<<"$l"; 
    # stay at most one visit ahead of association
    prev=$(q "SELECT max(visit) FROM ap.visit WHERE visit < $v"); [ -n "$prev" ] && prevprev=$(q "SELECT max(visit) FROM ap.visit WHERE visit < $prev") && [ -n "$prevprev" ] && wait_for $prevprev associate
    q "CALL skycat.ap_prepare_visit('ap', $v, $ra, $dec)" || exit 1
    q "INSERT INTO ap.dia_source_new SELECT * FROM public.stage WHERE visit = $v" || exit 1
  done ) & P=$!
( for l in $visits; do IFS=, read v ra dec <<<"$l"; wait_for $v prepare; until [ "$(q "SELECT count(*) FROM ap.dia_source_new WHERE visit = $v")" -gt 0 ]; do sleep 0.05; done; q "CALL skycat.ap_associate('ap', $v)" || exit 1; done ) & A=$!
( for l in $visits; do IFS=, read v ra dec <<<"$l"; wait_for $v associate; q "CALL skycat.ap_post_visit('ap', $v)" || exit 1; done ) & Q=$!
wait $P; e1=$?; wait $A; e2=$?; wait $Q; e3=$?
echo "exit codes $e1 $e2 $e3"
q "CALL skycat.ap_post_night('ap', '2026-11-23')"
