-- sky_key: the HEALPix NESTED index at depth 29 (so any coarser cell is a key range).
SELECT skycat.sky_key(10, 20) = skycat.healpix_cell(10, 20, 29) AS is_healpix_depth_29,
       skycat.sky_key(370, 20) = skycat.sky_key(10, 20) AS ra_wraps;
SELECT error_of($$SELECT skycat.sky_key(0, 91)$$);

-- dwithin: true iff sep_arcsec <= radius_arcsec (radius 0 means the same position).
SELECT skycat.dwithin(10, 20, 10, 20 + 1/3600.0, 1.0000001) AS just_inside,
       skycat.dwithin(10, 20, 10, 20 + 1/3600.0, 0.9999999) AS just_outside,
       skycat.dwithin(359.9999, 0, 0.0001, 0, 0.73) AS across_ra_zero,
       skycat.dwithin(0, 90, 180, 89.9999, 0.37) AS over_the_pole,
       skycat.dwithin(5, 5, 5, 5, 0) AS same_position,
       skycat.dwithin(5, 5, 5, 5, NULL) IS NULL AS null_radius;
SELECT error_of($$SELECT skycat.dwithin(0, 0, 0, 0, -1)$$);
SELECT error_of($$SELECT skycat.dwithin(0, 0, 0, 0, 'NaN')$$);
SELECT error_of($$SELECT skycat.dwithin(0, 95, 0, 0, 1)$$);

-- Index assistance: with an index on sky_key(ra, dec), a cone search is a bitmap index scan.
SELECT setseed(0.7);
-- Uniform points, plus dense patches around the cones tested below (RA 0/360, both poles).
CREATE TABLE cat AS
SELECT i AS id, 360 * random() AS ra, degrees(asin(2 * random() - 1)) AS dec
  FROM generate_series(1, 10000) i
UNION ALL
SELECT 10000 + row_number() OVER (),
       ((c.ra + (random() - 0.5) * 3 / greatest(cos(radians(c.dec)), 0.02))::numeric % 360 + 360)::numeric % 360,
       greatest(-90, least(90, c.dec + (random() - 0.5) * 3))
  FROM (VALUES (0.0, 0.0), (359.99, 30.0), (45.0, 90.0), (200.0, -89.9)) c(ra, dec), generate_series(1, 2500);
CREATE INDEX cat_sky ON cat (skycat.sky_key(ra, dec));
ANALYZE cat;
EXPLAIN (COSTS OFF) SELECT id FROM cat WHERE skycat.dwithin(ra, dec, 10.0, -5.0, 30);
-- Exactly the rows of the exact predicate, whatever the radius, wherever the cone.
SELECT c.ra, c.dec, r,
       (SELECT count(*) FROM cat WHERE skycat.dwithin(ra, dec, c.ra, c.dec, r)) AS dwithin,
       (SELECT count(*) FROM cat WHERE skycat.sep_arcsec(ra, dec, c.ra, c.dec) <= r) AS exact
  FROM (VALUES (0.0, 0.0), (359.99, 30.0), (45.0, 90.0), (200.0, -89.9)) c(ra, dec),
       unnest(ARRAY[0.001, 60, 3600, 18000]) r
 ORDER BY 1, 2, 3;
-- Joins use the index of whichever side has it, in either argument order.
CREATE TABLE probes AS SELECT id, ra + 0.001 AS ra, dec FROM cat WHERE id % 100 = 0;
ANALYZE probes;
EXPLAIN (COSTS OFF) SELECT count(*) FROM probes p JOIN cat c ON skycat.dwithin(p.ra, p.dec, c.ra, c.dec, 5);
SELECT (SELECT count(*) FROM probes p JOIN cat c ON skycat.dwithin(p.ra, p.dec, c.ra, c.dec, 5)) AS probe_first,
       (SELECT count(*) FROM probes p JOIN cat c ON skycat.dwithin(c.ra, c.dec, p.ra, p.dec, 5)) AS catalog_first,
       (SELECT count(*) FROM probes p, cat c WHERE skycat.sep_arcsec(p.ra, p.dec, c.ra, c.dec) <= 5) AS exact;

-- crossmatch: a case where greedy and optimal differ. L1 is nearest to R10 (1.0") but R10 is
-- L2's only candidate; optimal gives L1 R11 (1.1") instead, matching both.
CREATE TABLE l (id bigint, ra float8, dec float8, ra_err_arcsec float8, dec_err_arcsec float8);
CREATE TABLE r (LIKE l);
INSERT INTO l VALUES (1, 0, 0, 0.1, 0.1), (2, 0, 2 / 3600.0, 0.1, 0.1), (3, 180, 45, NULL, 0.1);
INSERT INTO r VALUES (10, 0, 1 / 3600.0, 0.1, 0.1), (11, 0, -1.1 / 3600.0, 0.1, 0.1), (12, 50, 50, 0.1, 0.1);
SELECT left_id, right_id, round(sep_arcsec::numeric, 6) AS sep_arcsec, rank
  FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 1.2) ORDER BY 1, 4;
SELECT left_id, right_id, rank
  FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 1.2, 'nearest') ORDER BY 1;
SELECT left_id, right_id
  FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 1.2, 'greedy') ORDER BY 1;
SELECT left_id, right_id
  FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 1.2, 'optimal') ORDER BY 1;
-- crossmatch_marked: the 'all' pairs, each with whether greedy / optimal chose it (the
-- greedy and optimal rows above: L1-R10 vs L1-R11 and L2-R10).
SELECT left_id, right_id, rank, chosen
  FROM skycat.crossmatch_marked('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 1.2, 'greedy') ORDER BY 1, 3;
SELECT left_id, right_id, rank, chosen
  FROM skycat.crossmatch_marked('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 1.2, 'optimal') ORDER BY 1, 3;
SELECT error_of($$SELECT * FROM skycat.crossmatch_marked('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 1.2, 'best')$$);
-- With error columns on both sides, optimal minimises the Gaussian negative log-likelihood.
SELECT left_id, right_id
  FROM skycat.crossmatch('SELECT * FROM l', 'SELECT * FROM r', 1.2, 'optimal') ORDER BY 1;
-- Empty inputs give no rows; int ids are accepted.
SELECT count(*) FROM skycat.crossmatch('SELECT id, ra, dec FROM l WHERE false', 'SELECT id, ra, dec FROM r', 10);
SELECT count(*) FROM skycat.crossmatch('SELECT id::int, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 10);
-- Errors name the problem.
SELECT error_of($$SELECT * FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 0)$$);
SELECT error_of($$SELECT * FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', 1, 'best')$$);
SELECT error_of($$SELECT * FROM skycat.crossmatch('SELECT id, ra FROM l', 'SELECT id, ra, dec FROM r', 1)$$);
SELECT error_of($$SELECT * FROM skycat.crossmatch('SELECT id, ra::numeric, dec FROM l', 'SELECT id, ra, dec FROM r', 1)$$);
SELECT error_of($$SELECT * FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, NULL::float8 FROM r', 1)$$);
SELECT error_of($$SELECT * FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec + 100 FROM r', 1)$$);
SELECT error_of($$SELECT * FROM skycat.crossmatch('SELECT id, ra, dec FROM no_such_table', 'SELECT id, ra, dec FROM r', 1)$$);
SELECT skycat.crossmatch_input_rows('SELECT id, ra, dec FROM l');
