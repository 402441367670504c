-- h3_cell: H3 cell with lat = dec and lng = ra wrapped to [-180, 180). Expected ids come from
-- Uber's C library via h3-py (tests/fixtures/geometry/h3_cells.csv), not from skycat.
SELECT skycat.h3_cell(345.56278797490796, -58.82005076371424, 0) AS res0_580366217605283839,
       skycat.h3_cell(354.2501021733223, 89.96719935748676, 10) AS res10_621552145145430015,
       skycat.h3_cell(30.90277549211717, -89.97789193415474, 10) AS res10_625764194210086911;
SELECT to_hex(skycat.h3_cell(10, 20, 7)) AS res7_hex;
-- A cover of a circle: every point within it lies in one of the cells.
SELECT cardinality(skycat.h3_cells_in_circle(10, 20, 0.001, 7)) AS tiny_is_one_cell,
       skycat.h3_cells_in_circle(10, 20, 0.001, 7) = ARRAY[skycat.h3_cell(10, 20, 7)] AS and_it_is_the_centre;
SELECT setseed(0.2);
WITH c AS MATERIALIZED (SELECT ra, dec, skycat.h3_cells_in_circle(ra, dec, 3600, 6) AS cover
             FROM (VALUES (0.0, 0.0), (359.99, 45.0), (180.0, 89.9), (42.0, -89.95)) v(ra, dec))
SELECT count(DISTINCT c.ra) AS circles, count(*) > 1000 AS many_points,
       bool_and(skycat.h3_cell(p.ra, p.dec, 6) = ANY (c.cover)) AS covered
  FROM c,
       LATERAL (SELECT (c.ra + (random() - 0.5) * 2.0 / greatest(cos(radians(c.dec)), 0.01))::float8 AS ra,
                       greatest(-90, least(90, c.dec + (random() - 0.5) * 2.0))::float8 AS dec
                  FROM generate_series(1, 500)) p
 WHERE skycat.sep_arcsec(c.ra, c.dec, p.ra, p.dec) <= 3600;
-- HEALPix NESTED (cdshealpix); expected ids from astropy-healpix (healpix_cells.csv).
SELECT skycat.healpix_cell(60.458728548210786, 56.1852833392102, 10) AS nested_852770,
       skycat.healpix_cell(301.9059795839386, -89.96133954696089, 10) AS nested_11534336,
       skycat.healpix_cell(0, 0, 0) AS base_cell;
WITH c AS MATERIALIZED (SELECT ra, dec, skycat.healpix_cells_in_circle(ra, dec, 600, 10) AS cover
             FROM (VALUES (0.0, 0.0), (359.99, 45.0), (180.0, 89.99), (42.0, -89.99)) v(ra, dec))
SELECT count(DISTINCT c.ra) AS circles, count(*) > 1000 AS many_points,
       bool_and(skycat.healpix_cell(p.ra, p.dec, 10) = ANY (c.cover)) AS covered
  FROM c,
       LATERAL (SELECT (c.ra + (random() - 0.5) / 3.0 / greatest(cos(radians(c.dec)), 0.01))::float8 AS ra,
                       greatest(-90, least(90, c.dec + (random() - 0.5) / 3.0))::float8 AS dec
                  FROM generate_series(1, 500)) p
 WHERE skycat.sep_arcsec(c.ra, c.dec, p.ra, p.dec) <= 600;
-- Errors.
SELECT error_of($$SELECT skycat.h3_cell(0, 0, 16)$$);
SELECT error_of($$SELECT skycat.h3_cell(0, 0, -1)$$);
SELECT error_of($$SELECT skycat.h3_cell(0, 95, 5)$$);
SELECT error_of($$SELECT skycat.h3_cells_in_circle(0, 0, 0, 5)$$);
SELECT error_of($$SELECT skycat.h3_cells_in_circle(0, 0, 36000, 15)$$);
SELECT error_of($$SELECT skycat.healpix_cell(0, 0, 30)$$);
SELECT error_of($$SELECT skycat.healpix_cells_in_circle(0, 0, 36000, 20)$$);
