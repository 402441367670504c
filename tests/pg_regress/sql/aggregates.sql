-- lc_stats on three points, checked against closed forms written out here:
-- f = 1, 2, 4 (sigma 1) at t = 0, 1, 2 days: weighted mean 7/3, sigma sqrt(7/3), slope 1.5.
SELECT (s).n,
       abs((s).mean - 7.0 / 3) < 1e-15 AS mean,
       abs((s).mean_err - sqrt(1.0 / 3)) < 1e-15 AS mean_err,
       abs((s).sigma - sqrt(7.0 / 3)) < 1e-15 AS sigma,
       abs((s).chi2 - ((1 - 7.0 / 3)^2 + (2 - 7.0 / 3)^2 + (4 - 7.0 / 3)^2)) < 1e-12 AS chi2,
       (s).min, (s).max, (s).mad, (s).p25, (s).p50, (s).p75,
       abs((s).linear_slope - 1.5) < 1e-9 AS slope, (s).max_slope, (s).err_mean
  FROM (SELECT skycat.lc_stats(f, e, t) AS s
          FROM (VALUES (4.0, 1.0, 60002.0), (1.0, 1.0, 60000.0), (2.0, 1.0, 60001.0)) v(f, e, t)) q;
-- Rows with NULL, NaN or infinite flux, or error <= 0, are not used; a NULL time still counts
-- for the fields that do not use time.
SELECT (s).n, (s).mean, (s).linear_slope IS NULL AS no_fit_from_one_timed_row
  FROM (SELECT skycat.lc_stats(f, e, t) AS s
          FROM (VALUES (10.0, 1.0, 60000.0), (20.0, 1.0, NULL), (NULL, 1.0, 60001.0), ('NaN', 1.0, 60002.0),
                       ('Infinity', 1.0, 60003.0), (30.0, 0.0, 60004.0), (30.0, -1.0, 60005.0)) v(f, e, t)) q;
-- Undefined fields are NULL, never NaN: no rows, one row, equal fluxes (skew 0, as pandas),
-- equal times (no slope, no fit).
SELECT (skycat.lc_stats(f, e, t)).* FROM (VALUES (1.0, 1.0, 1.0)) v(f, e, t) WHERE false;
SELECT (skycat.lc_stats(f, e, t)).* FROM (VALUES (5.0, 2.0, 60000.0)) v(f, e, t);
SELECT (s).sigma, (s).skew, (s).max_slope IS NULL AS max_slope_null,
       (s).linear_slope IS NULL AS fit_null
  FROM (SELECT skycat.lc_stats(3.0, e, 60000.0) AS s FROM (VALUES (1.0), (2.0), (3.0)) v(e)) q;
-- flux_mean: (mean, mean_err, n) of the used rows; weights 1 and 1/4.
SELECT skycat.flux_mean(f, e) FROM (VALUES (1.0, 1.0), (3.0, 2.0), ('NaN', 1.0), (NULL, 1.0)) v(f, e);
SELECT skycat.flux_mean(f, e) FROM (VALUES (1.0, 1.0)) v(f, e) WHERE false;
-- mean_position: across RA 0/360, at the pole, and NULL when the unit vectors cancel.
SELECT round((p).ra::numeric, 9) AS ra, round((p).dec::numeric, 9) AS dec
  FROM (SELECT skycat.mean_position(a, d) p FROM (VALUES (359.0, 10.0), (1.0, 10.0)) v(a, d)) s;
SELECT round((p).dec::numeric, 9) AS dec_at_pole
  FROM (SELECT skycat.mean_position(a, 89.0) p FROM (VALUES (0.0), (90.0), (180.0), (270.0)) v(a)) s;
SELECT skycat.mean_position(a, 0) IS NULL AS antipodes_cancel FROM (VALUES (0.0), (180.0)) v(a);
-- The per-group memory limit is a clear error (54000), not a crash.
SET skycat.lc_stats_max_rows = 100;
SELECT error_of($$SELECT skycat.lc_stats(g, 1, g) FROM generate_series(1, 1000) g$$);
RESET skycat.lc_stats_max_rows;
