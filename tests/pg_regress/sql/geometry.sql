-- sep_arcsec: great-circle separation in arcseconds.
-- Closed forms: along a meridian it is the dec difference, along the equator the ra difference.
SELECT skycat.sep_arcsec(10, 20, 10, 21) AS one_degree_north,
       round(skycat.sep_arcsec(359.9, 0, 0.1, 0)::numeric, 9) AS across_ra_zero,
       round(skycat.sep_arcsec(0, 90, 123, 40)::numeric, 9) AS pole_to_dec40,
       skycat.sep_arcsec(0, 30, 180, -30) AS antipodes;
-- ra outside [0, 360) is wrapped, so these are all the same 0.2 degree.
SELECT round(skycat.sep_arcsec(-0.1, 0, 0.1, 0)::numeric, 9) AS a,
       round(skycat.sep_arcsec(359.9, 0, 360.1, 0)::numeric, 9) AS b,
       round(skycat.sep_arcsec(719.9, 0, -359.9, 0)::numeric, 9) AS c;
-- Tiny separations are not lost (acos would return 0): 1 milli-arcsec along a meridian.
SELECT round(skycat.sep_arcsec(30, 45, 30, 45 + 0.001 / 3600.0)::numeric, 12) AS one_mas;
-- Against q3c_dist (an independent implementation) on 10000 random pairs.
SELECT setseed(0.42);
SELECT count(*) AS pairs,
       max(abs(skycat.sep_arcsec(ra1, dec1, ra2, dec2) - q3c_dist(ra1, dec1, ra2, dec2) * 3600)) < 1e-5 AS agrees_with_q3c
  FROM (SELECT 360 * random() AS ra1, degrees(asin(2 * random() - 1)) AS dec1,
               360 * random() AS ra2, degrees(asin(2 * random() - 1)) AS dec2
          FROM generate_series(1, 10000)) p;
-- STRICT: NULL in, NULL out.
SELECT skycat.sep_arcsec(NULL, 0, 0, 0) IS NULL AS null_in_null_out;
-- position_angle: degrees east of north.
SELECT round(skycat.position_angle(10, 0, 10, 1)::numeric, 9) AS north,
       round(skycat.position_angle(10, 0, 11, 0)::numeric, 9) AS east,
       round(skycat.position_angle(10, 0, 10, -1)::numeric, 9) AS south,
       round(skycat.position_angle(359.5, 0, 0.5, 0)::numeric, 9) AS east_across_ra_zero;
-- Errors: SQLSTATE 22023 naming the argument and the allowed range.
SELECT error_of($$SELECT skycat.sep_arcsec(0, 90.5, 0, 0)$$);
SELECT error_of($$SELECT skycat.sep_arcsec(0, 0, 0, -91)$$);
SELECT error_of($$SELECT skycat.sep_arcsec('NaN', 0, 0, 0)$$);
SELECT error_of($$SELECT skycat.sep_arcsec(0, 0, 'Infinity', 0)$$);
SELECT error_of($$SELECT skycat.position_angle(0, 'NaN', 0, 0)$$);
