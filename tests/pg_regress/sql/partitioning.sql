-- stripe(dec, h) = floor((dec + 90) / h); +90 belongs to the top stripe.
SELECT skycat.stripe(-90, 1) AS south_pole, skycat.stripe(0, 1) AS equator,
       skycat.stripe(89.5, 1) AS top, skycat.stripe(90, 1) AS north_pole,
       skycat.stripe(90, 7) AS north_pole_h7, skycat.stripe(-0.000001, 1) AS just_south;
-- The stripes a circle touches, ascending.
SELECT skycat.stripes_in_circle(10, 0.5, 3600, 1) AS three_stripes,
       skycat.stripes_in_circle(10, 0.5, 1, 1) AS one_stripe,
       skycat.stripes_in_circle(0, 89.9, 3600, 1) AS around_north_pole,
       skycat.stripes_in_circle(0, -90, 7200, 1) AS at_south_pole;
-- Stripe bounds: what create_stripe_partitions creates (top stripe ends just above +90).
SELECT * FROM skycat.stripe_bounds(30);
SELECT count(*) FROM skycat.stripe_bounds(0.1);
-- Qserv chunks: these expected ids come from LSST's lsst.sphgeom Chunker
-- (tests/fixtures/geometry/chunks.csv), not from skycat.
SELECT skycat.chunk_id(359.7105025846843, 71.3969504726245) AS chunk_206935,
       skycat.sub_chunk_id(359.7105025846843, 71.3969504726245) AS sub_26,
       skycat.chunk_id(32.719888931438696, 4.574132954915317) AS chunk_121101,
       skycat.sub_chunk_id(32.719888931438696, 4.574132954915317) AS sub_13,
       skycat.chunk_id(346.6141512350228, 89.50265108373767) AS chunk_230520,
       skycat.chunk_id(262.1622543483378, 89.42021969502187, 18, 100) AS chunk_612,
       skycat.sub_chunk_id(262.1622543483378, 89.42021969502187, 18, 100) AS sub_58114;
-- Chunks touched by circles (sphgeom's getChunksIntersecting gives the same lists).
SELECT skycat.chunks_in_circle(204.9669901894821, -89.47295545756047, 56.37198350166204) AS near_south_pole,
       skycat.chunks_in_circle(10, 10, 0.001) AS tiny,
       cardinality(skycat.chunks_in_circle(10, 10, 3600)) AS one_degree;
-- Every chunk of random points inside a circle is in the circle's cover.
SELECT setseed(0.1);
WITH c AS MATERIALIZED (SELECT ra, dec, skycat.chunks_in_circle(ra, dec, 1800) AS cover
             FROM (VALUES (0.0, 0.0), (359.99, 45.0), (180.0, 89.9), (42.0, -89.95)) v(ra, dec))
SELECT count(DISTINCT c.ra) AS circles, count(*) > 1000 AS many_points,
       bool_and(skycat.chunk_id(p.ra, p.dec) = ANY (c.cover)) AS covered
  FROM c,
       LATERAL (SELECT (c.ra + (random() - 0.5) * 0.5 / greatest(cos(radians(c.dec)), 0.01))::float8 AS ra,
                       greatest(-90, least(90, c.dec + (random() - 0.5) * 0.5))::float8 AS dec
                  FROM generate_series(1, 500)) p
 WHERE skycat.sep_arcsec(c.ra, c.dec, p.ra, p.dec) <= 1800;
-- chunk_edge: does the circle reach another chunk? Dec 0 is a stripe edge at 340 stripes; at
-- (10, 0.26) the nearest edge is 0.058 degree away.
SELECT skycat.chunk_edge(10, 0.0001, 1) AS at_stripe_edge, skycat.chunk_edge(10, 0.26, 1) AS inside,
       skycat.chunk_edge(10, 0.26, 300) AS wide;
-- The same answer as the cover having more than one chunk, and true whenever a point of the
-- circle lies in another chunk.
SELECT setseed(0.2);
WITH p AS MATERIALIZED (SELECT (random() * 360)::float8 AS ra, (random() * 180 - 90)::float8 AS dec,
                               (random() * 3000)::float8 + 0.01 AS r
                          FROM generate_series(1, 2000))
SELECT bool_and(skycat.chunk_edge(ra, dec, r) = (cardinality(skycat.chunks_in_circle(ra, dec, r)) > 1)) AS same_as_cover,
       count(*) FILTER (WHERE skycat.chunk_edge(ra, dec, r)) BETWEEN 100 AND 1900 AS both_kinds,
       bool_and(skycat.chunk_edge(ra, dec, r)
                OR skycat.chunk_id(ra, dec) = skycat.chunk_id(ra, least(90, dec + 0.99 * r / 3600))) AS north_point_agrees
  FROM p;
-- Errors.
SELECT error_of($$SELECT skycat.chunk_edge(0, 0, 0)$$);
SELECT error_of($$SELECT skycat.stripe(91, 1)$$);
SELECT error_of($$SELECT skycat.stripe(0, 0)$$);
SELECT error_of($$SELECT skycat.stripe(0, -1)$$);
SELECT error_of($$SELECT skycat.stripe(0, 'NaN')$$);
SELECT error_of($$SELECT skycat.stripes_in_circle(0, 0, 0, 1)$$);
SELECT error_of($$SELECT skycat.stripes_in_circle(0, 0, -5, 1)$$);
SELECT error_of($$SELECT skycat.stripe_bounds(0.01)$$);
SELECT error_of($$SELECT skycat.chunk_id(0, 0, 0, 3)$$);
SELECT error_of($$SELECT skycat.chunk_id(0, 0, 340, 0)$$);
SELECT error_of($$SELECT skycat.chunk_id('Infinity', 0)$$);
SELECT error_of($$SELECT skycat.sub_chunk_id(0, -90.5)$$);
SELECT error_of($$SELECT skycat.chunks_in_circle(0, 0, 60, 340, -1)$$);
SELECT error_of($$SELECT skycat.chunks_in_circle(0, 0, 'NaN')$$);

-- create_stripe_partitions on a table declared PARTITION BY RANGE (dec).
CREATE TABLE object (object_id bigint, ra float8, "dec" float8) PARTITION BY RANGE ("dec");
SELECT skycat.create_stripe_partitions('object', 15);
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bounds
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'object'::regclass ORDER BY 1;
-- Rows land in the partition that stripe() names, poles included.
INSERT INTO object VALUES (1, 10, -90), (2, 20, -75.0000001), (3, 30, 0), (4, 40, 89.99), (5, 50, 90);
SELECT object_id, "dec", tableoid::regclass AS partition, skycat.stripe("dec", 15) AS stripe FROM object ORDER BY 1;
-- Re-running with the same height does nothing.
SELECT skycat.create_stripe_partitions('object', 15);
-- Out-of-range declinations have no partition.
SELECT error_of($$INSERT INTO object VALUES (6, 0, 90.5)$$);
SELECT error_of($$INSERT INTO object VALUES (6, 0, 'NaN')$$);
-- Errors: a different height, a table that is not partitioned, the wrong key, the wrong type.
SELECT error_of($$SELECT skycat.create_stripe_partitions('object', 10)$$);
CREATE TABLE plain (dec float8);
SELECT error_of($$SELECT skycat.create_stripe_partitions('plain', 1)$$);
CREATE TABLE by_ra (ra float8, dec float8) PARTITION BY RANGE (ra);
SELECT error_of($$SELECT skycat.create_stripe_partitions('by_ra', 1)$$);
SELECT error_of($$SELECT skycat.create_stripe_partitions('by_ra', 1, 'decl')$$);
CREATE TABLE by_list (dec float8) PARTITION BY LIST (dec);
SELECT error_of($$SELECT skycat.create_stripe_partitions('by_list', 1)$$);
CREATE TABLE by_numeric (dec numeric) PARTITION BY RANGE (dec);
SELECT error_of($$SELECT skycat.create_stripe_partitions('by_numeric', 1)$$);
SELECT error_of($$SELECT skycat.create_stripe_partitions('does_not_exist', 1)$$);
CREATE TABLE fine (dec float8) PARTITION BY RANGE (dec);
SELECT error_of($$SELECT skycat.create_stripe_partitions('fine', 0.001)$$);
-- A custom declination column name and a schema-qualified table.
CREATE SCHEMA ap;
CREATE TABLE ap."Dia Source" (id bigint, decl float8) PARTITION BY RANGE (decl);
SELECT skycat.create_stripe_partitions('ap."Dia Source"', 45, 'decl');
SELECT c.oid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'ap."Dia Source"'::regclass ORDER BY c.relname;
