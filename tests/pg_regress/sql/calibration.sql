-- Photometry (LSST PhotoCalib semantics), checked against the closed forms written out here.
SELECT skycat.nanojansky(1000, 0.5) = 1000 * 0.5 AS flux,
       skycat.nanojansky_err(1000, 30, 0.5, 0.01) = sqrt((30 * 0.5)^2 + (1000 * 0.01)^2) AS flux_err,
       skycat.nanojansky_err(0, 3, 2, 0.5) AS err_at_zero_flux,
       abs(skycat.ab_mag(100) - (-2.5 * log(100) + 31.4)) < 1e-12 AS mag_closed_form,
       abs(skycat.ab_mag(3631e9)) < 1e-4 AS mag_of_3631_jansky_is_0,
       abs(skycat.ab_mag_err(200, 2) - 2.5 / ln(10) * 2 / 200) < 1e-15 AS mag_err,
       skycat.recalibrate(skycat.nanojansky(1234, 0.5), 0.5, 0.55) = skycat.nanojansky(1234, 0.55) AS recalibrate,
       abs(skycat.recalibrate_err(skycat.nanojansky(1234, 0.5), skycat.nanojansky_err(1234, 30, 0.5, 0.01), 0.5, 0.01, 0.55, 0.02)
           - skycat.nanojansky_err(1234, 30, 0.55, 0.02)) < 1e-9 AS recalibrate_err;
-- ab_mag is NULL for flux <= 0 (as is its error); NaN in gives NaN out everywhere.
SELECT skycat.ab_mag(0) IS NULL AS zero, skycat.ab_mag(-5) IS NULL AS negative,
       skycat.ab_mag_err(-5, 1) IS NULL AS err_negative,
       skycat.ab_mag('NaN') AS nan_mag, skycat.nanojansky('NaN', 0.5) AS nan_flux,
       skycat.nanojansky(10, 'NaN') AS nan_calib, skycat.nanojansky_err(10, 'NaN', 0.5, 0.01) AS nan_err;
-- NULL in, NULL out.
SELECT skycat.nanojansky(NULL, 0.5) IS NULL AS strict;
-- A calibration that is not finite and positive, or a negative error, is an error (22023).
SELECT error_of($$SELECT skycat.nanojansky(10, 0)$$);
SELECT error_of($$SELECT skycat.nanojansky(10, -0.5)$$);
SELECT error_of($$SELECT skycat.nanojansky_err(10, 1, 'Infinity', 0)$$);
SELECT error_of($$SELECT skycat.nanojansky_err(10, 1, 0.5, -0.01)$$);
SELECT error_of($$SELECT skycat.recalibrate(10, 0.5, 0)$$);
SELECT error_of($$SELECT skycat.photo_calib(-1)$$);
-- photo_calib: constant, or a Chebyshev field (afw ChebyshevBoundedField) over the detector.
SELECT skycat.photo_calib(0.5, 0.01) AS constant;
SELECT '{"calibrationMean": 0.5, "bbox": [0, 0, 4071, 3999], "coefficients": [[0.5, 0.01], [0.02, 0.003]]}'::skycat.photo_calib AS field \gset
-- T0 = 1, T1(s) = s with s = 2 (x - 2035.5) / 4072 (the half-pixel-widened box mapped to [-1, 1]).
SELECT abs(skycat.calibration(:'field', 1000, 3000)
           - (0.5 + 0.01 * (2 * (1000 - 2035.5) / 4072) + 0.02 * (2 * (3000 - 1999.5) / 4000)
              + 0.003 * (2 * (1000 - 2035.5) / 4072) * (2 * (3000 - 1999.5) / 4000))) < 1e-15 AS field_value,
       skycat.nanojansky(:'field'::skycat.photo_calib, 100, 1000, 3000) = 100 * skycat.calibration(:'field', 1000, 3000) AS field_flux,
       skycat.calibration(skycat.photo_calib(0.7), 5, 5) AS constant_anywhere;
-- Bad photo_calib text: 22P02 naming the field.
SELECT error_of($$SELECT '{"calibrationErr": 0.1}'::skycat.photo_calib$$);
SELECT error_of($$SELECT '{"calibrationMean": 1, "coefficients": [[1, 2], [3]], "bbox": [0, 0, 9, 9]}'::skycat.photo_calib$$);
SELECT error_of($$SELECT '{"calibrationMean": 1, "coefficients": [[1]]}'::skycat.photo_calib$$);
-- wcs: TAN-SIP from a JSON object of FITS keywords; extra keywords (NAXIS, DATE-OBS) are ignored.
CREATE TABLE wcs_example (w skycat.wcs);
INSERT INTO wcs_example VALUES ('{"NAXIS": 2, "DATE-OBS": "2026-11-24T03:00:00",
  "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 2036.5, "CRPIX2": 2000.5,
  "CRVAL1": 359.99, "CRVAL2": -30.0, "CD1_1": -5.5e-5, "CD1_2": 1e-7, "CD2_1": 1e-7, "CD2_2": 5.5e-5,
  "A_ORDER": 2, "B_ORDER": 2, "A_2_0": 1e-7, "A_1_1": -2e-7, "B_0_2": -2e-7}');
SELECT w FROM wcs_example;
-- CRPIX (FITS, 1-based) is 0-based pixel CRPIX - 1, and it maps to CRVAL.
SELECT round((p).ra::numeric, 10) AS ra, round((p).dec::numeric, 10) AS dec
  FROM (SELECT skycat.pixel_to_sky(w, 2035.5, 1999.5) AS p FROM wcs_example) s;
-- Round trip over the detector, including across RA 0/360: within 1e-6 pixel.
SELECT count(*) AS points,
       max(greatest(abs((q).x - x), abs((q).y - y))) < 1e-6 AS round_trip_within_1e6_pixel,
       min((p).ra) < 1 AND max((p).ra) > 359 AS spans_ra_zero
  FROM (SELECT x, y, p, skycat.sky_to_pixel(w, (p).ra, (p).dec) AS q
          FROM (SELECT w, x, y, skycat.pixel_to_sky(w, x, y) AS p
                  FROM wcs_example, generate_series(-0.5, 4071.5, 203.6) x, generate_series(-0.5, 3999.5, 200) y) a) b;
-- One pixel is 0.198 arcsec here (|CD| = 5.5e-5 deg); an isotropic 0.1 px error is 0.0198 arcsec.
SELECT round(ra_err_arcsec::numeric, 6) AS ra_err, round(dec_err_arcsec::numeric, 6) AS dec_err,
       abs(ra_dec_cov) < 1e-6 AS small_cov
  FROM wcs_example, skycat.pixel_to_sky_cov(w, 2035.5, 1999.5, 0.1, 0.1);
-- NaN pixels give (NaN, NaN); a sky position on the far side of the sphere has no pixel.
SELECT skycat.pixel_to_sky(w, 'NaN', 3) AS nan_pixel, skycat.sky_to_pixel(w, 180, 30) AS far_side FROM wcs_example;
SELECT error_of($$SELECT skycat.sky_to_pixel(w, 0, 91) FROM wcs_example$$);
-- jsonb casts both ways.
SELECT ((w::jsonb)::skycat.wcs)::text = w::text AS jsonb_round_trip FROM wcs_example;
-- Malformed WCS text: 22P02 naming the keyword.
SELECT error_of($$SELECT 'not json'::skycat.wcs$$);
SELECT error_of($$SELECT '{"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV"}'::skycat.wcs$$);
SELECT error_of($$SELECT '{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1}'::skycat.wcs$$);
SELECT error_of($$SELECT '{"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1e-4, "CD2_2": 1e-4}'::skycat.wcs$$);
SELECT error_of($$SELECT '{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1e-4, "CD2_2": "x"}'::skycat.wcs$$);
SELECT error_of($$SELECT '{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1e-4, "CD1_2": 1e-4, "CD2_1": 1e-4, "CD2_2": 1e-4}'::skycat.wcs$$);
DROP TABLE wcs_example;
