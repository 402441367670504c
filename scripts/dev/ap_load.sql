-- Development harness for issue 7: loads skycat-sim night CSVs from /tmp/night_small into ap.*
-- (after skycat.ap_create('ap')); stage/truth tables in public.
CREATE TEMP TABLE so (object_id bigint, ra float8, "dec" float8, variable boolean, flux float8);
\copy so FROM '/tmp/night_small/object.csv' (FORMAT csv)
INSERT INTO ap.object (object_id, ra, "dec") SELECT object_id, ra, "dec" FROM so;
CREATE TEMP TABLE mo (moving_object_id bigint, ra float8, "dec" float8, rate float8);
\copy mo FROM '/tmp/night_small/moving_object.csv' (FORMAT csv)
INSERT INTO ap.moving_object (moving_object_id, ra, "dec") SELECT moving_object_id, ra, "dec" FROM mo;
\copy ap.mops_pred FROM '/tmp/night_small/mops_pred.csv' (FORMAT csv)
\copy ap.visit FROM '/tmp/night_small/visit.csv' (FORMAT csv)
CREATE TABLE public.stage (LIKE ap.dia_source_new);
\copy public.stage FROM '/tmp/night_small/dia_source_new.csv' (FORMAT csv)
CREATE TABLE public.truth (dia_source_id bigint, kind text, truth_id bigint);
\copy public.truth FROM '/tmp/night_small/truth.csv' (FORMAT csv)
ANALYZE;
