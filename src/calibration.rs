//! SQL functions and types of calibration (SQL-API.md section 3): photometry with LSST
//! PhotoCalib semantics, the `photo_calib` and `wcs` types, pixel <-> sky.
//! The bulk procedures are in sql/calibration.sql.

use std::rc::Rc;

use skycat_core::photometry::{self, PhotoCalib};
use skycat_core::validate;
use skycat_core::wcs::Wcs;

use crate::errors::{finite_or_out_of_range, invalid_text, OrSqlError};
use crate::fastcall::scalar_fn;
use crate::sqltypes::{CStringArg, CStringRet, Float8Row, VarlenaRet};

fn calib(function: &str, argument: &'static str, c: f64) -> f64 {
    photometry::check_calib(argument, c).or_sql_error(function)
}

fn err(function: &str, argument: &'static str, e: f64) -> f64 {
    photometry::check_err(argument, e).or_sql_error(function)
}

// ------------------------------------------------------------------ types

pgrx::extension_sql!(
    "CREATE TYPE wcs;
     CREATE TYPE photo_calib;
     CREATE TYPE sky_point AS (ra float8, dec float8);
     COMMENT ON TYPE sky_point IS 'A sky position: ra in [0, 360) and dec, ICRS degrees.';
     CREATE TYPE pixel_point AS (x float8, y float8);
     COMMENT ON TYPE pixel_point IS 'A 0-based pixel position (LSST convention: FITS pixel = x + 1).';",
    name = "calibration_shell_types"
);

scalar_fn! {
    sql_name = "wcs_in";
    requires = ["calibration_shell_types"];
    sql = "CREATE FUNCTION wcs_in(cstring) RETURNS wcs IMMUTABLE STRICT PARALLEL SAFE
           LANGUAGE c AS 'MODULE_PATHNAME', 'wcs_in';";
    fn wcs_in(text: CStringArg) -> VarlenaRet {
        match Wcs::from_json(text.0) {
            Ok(w) => VarlenaRet(w.encode()),
            Err(e) => invalid_text("wcs", &e.to_string()),
        }
    }
}

scalar_fn! {
    sql_name = "wcs_out";
    requires = ["calibration_shell_types"];
    sql = "CREATE FUNCTION wcs_out(wcs) RETURNS cstring IMMUTABLE STRICT PARALLEL SAFE
           LANGUAGE c AS 'MODULE_PATHNAME', 'wcs_out';";
    fn wcs_out(w: Rc<Wcs>) -> CStringRet {
        CStringRet(w.to_json())
    }
}

scalar_fn! {
    sql_name = "photo_calib_in";
    requires = ["calibration_shell_types"];
    sql = "CREATE FUNCTION photo_calib_in(cstring) RETURNS photo_calib IMMUTABLE STRICT PARALLEL SAFE
           LANGUAGE c AS 'MODULE_PATHNAME', 'photo_calib_in';";
    fn photo_calib_in(text: CStringArg) -> VarlenaRet {
        match PhotoCalib::from_json(text.0) {
            Ok(p) => VarlenaRet(p.encode()),
            Err(e) => invalid_text("photo_calib", &e),
        }
    }
}

scalar_fn! {
    sql_name = "photo_calib_out";
    requires = ["calibration_shell_types"];
    sql = "CREATE FUNCTION photo_calib_out(photo_calib) RETURNS cstring IMMUTABLE STRICT PARALLEL SAFE
           LANGUAGE c AS 'MODULE_PATHNAME', 'photo_calib_out';";
    fn photo_calib_out(p: Rc<PhotoCalib>) -> CStringRet {
        CStringRet(p.to_json())
    }
}

pgrx::extension_sql!(
    "-- STORAGE plain: never compressed or moved out of line, so per-row use never detoasts.
     CREATE TYPE wcs (INPUT = wcs_in, OUTPUT = wcs_out, INTERNALLENGTH = VARIABLE,
                      ALIGNMENT = double, STORAGE = plain);
     COMMENT ON TYPE wcs IS
       'A TAN or TAN-SIP world coordinate system. Text form: a JSON object of FITS header keywords.';
     CREATE CAST (jsonb AS wcs) WITH INOUT;
     CREATE CAST (wcs AS jsonb) WITH INOUT;
     CREATE TYPE photo_calib (INPUT = photo_calib_in, OUTPUT = photo_calib_out, INTERNALLENGTH = VARIABLE,
                              ALIGNMENT = double, STORAGE = plain);
     COMMENT ON TYPE photo_calib IS
       'A photometric calibration (nJy per count): constant, or a 2-D Chebyshev field over the detector (afw ChebyshevBoundedField).';
     CREATE CAST (jsonb AS photo_calib) WITH INOUT;
     CREATE CAST (photo_calib AS jsonb) WITH INOUT;",
    name = "calibration_types",
    requires = ["wcs_in", "wcs_out", "photo_calib_in", "photo_calib_out"]
);

// ------------------------------------------------------------------ photometry

scalar_fn! {
    sql_name = "nanojansky";
    sql = "CREATE FUNCTION nanojansky(inst_flux float8, calib_mean float8) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nanojansky';
           COMMENT ON FUNCTION nanojansky(float8, float8) IS
             'Calibrated flux in nJy: inst_flux (counts) * calib_mean (nJy per count). NaN in gives NaN.';";
    fn nanojansky(inst_flux: f64, calib_mean: f64) -> f64 {
        let v = photometry::nanojansky(inst_flux, calib("nanojansky", "calib_mean", calib_mean));
        finite_or_out_of_range("nanojansky", v, &[inst_flux, calib_mean])
    }
}

scalar_fn! {
    sql_name = "nanojansky_err";
    sql = "CREATE FUNCTION nanojansky_err(inst_flux float8, inst_flux_err float8, calib_mean float8, calib_err float8)
           RETURNS float8 IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nanojansky_err';
           COMMENT ON FUNCTION nanojansky_err(float8, float8, float8, float8) IS
             'Error of nanojansky(): hypot(inst_flux_err * calib_mean, inst_flux * calib_err), as LSST PhotoCalib.';";
    fn nanojansky_err(inst_flux: f64, inst_flux_err: f64, calib_mean: f64, calib_err: f64) -> f64 {
        let c = calib("nanojansky_err", "calib_mean", calib_mean);
        let ce = err("nanojansky_err", "calib_err", calib_err);
        let ie = err("nanojansky_err", "inst_flux_err", inst_flux_err);
        let v = photometry::nanojansky_err(inst_flux, ie, c, ce);
        finite_or_out_of_range("nanojansky_err", v, &[inst_flux, inst_flux_err, calib_mean, calib_err])
    }
}

scalar_fn! {
    sql_name = "ab_mag";
    sql = "CREATE FUNCTION ab_mag(flux_njy float8) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'ab_mag';
           COMMENT ON FUNCTION ab_mag(float8) IS
             'AB magnitude of a flux in nJy: -2.5 log10(flux_njy) + 31.4; NULL for flux <= 0.';";
    fn ab_mag(flux_njy: f64) -> Option<f64> {
        photometry::ab_mag(flux_njy)
    }
}

scalar_fn! {
    sql_name = "ab_mag_err";
    sql = "CREATE FUNCTION ab_mag_err(flux_njy float8, flux_err_njy float8) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'ab_mag_err';
           COMMENT ON FUNCTION ab_mag_err(float8, float8) IS
             'Error of ab_mag(): 2.5 / ln(10) * flux_err_njy / flux_njy; NULL for flux <= 0; a negative error is an error.';";
    fn ab_mag_err(flux_njy: f64, flux_err_njy: f64) -> Option<f64> {
        photometry::ab_mag_err(flux_njy, err("ab_mag_err", "flux_err_njy", flux_err_njy))
            .map(|v| finite_or_out_of_range("ab_mag_err", v, &[flux_njy, flux_err_njy]))
    }
}

scalar_fn! {
    sql_name = "recalibrate";
    sql = "CREATE FUNCTION recalibrate(flux_njy float8, old_calib_mean float8, new_calib_mean float8) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'recalibrate';
           COMMENT ON FUNCTION recalibrate(float8, float8, float8) IS
             'Re-applies a new calibration to a flux calibrated with old_calib_mean: flux_njy / old * new.';";
    fn recalibrate(flux_njy: f64, old_calib_mean: f64, new_calib_mean: f64) -> f64 {
        let old = calib("recalibrate", "old_calib_mean", old_calib_mean);
        let new = calib("recalibrate", "new_calib_mean", new_calib_mean);
        let v = photometry::recalibrate(flux_njy, old, new);
        finite_or_out_of_range("recalibrate", v, &[flux_njy, old_calib_mean, new_calib_mean])
    }
}

scalar_fn! {
    sql_name = "recalibrate_err";
    sql = "CREATE FUNCTION recalibrate_err(flux_njy float8, flux_err_njy float8, old_calib_mean float8,
                                          old_calib_err float8, new_calib_mean float8, new_calib_err float8)
           RETURNS float8 IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'recalibrate_err';
           COMMENT ON FUNCTION recalibrate_err(float8, float8, float8, float8, float8, float8) IS
             'Re-applies a new calibration to a flux error: recovers the instrumental error, then nanojansky_err() with the new calibration.';";
    fn recalibrate_err(
        flux_njy: f64,
        flux_err_njy: f64,
        old_calib_mean: f64,
        old_calib_err: f64,
        new_calib_mean: f64,
        new_calib_err: f64,
    ) -> f64 {
        let f = "recalibrate_err";
        let (old, old_err) = (calib(f, "old_calib_mean", old_calib_mean), err(f, "old_calib_err", old_calib_err));
        let (new, new_err) = (calib(f, "new_calib_mean", new_calib_mean), err(f, "new_calib_err", new_calib_err));
        let v = photometry::recalibrate_err(flux_njy, err(f, "flux_err_njy", flux_err_njy), old, old_err, new, new_err);
        let args = [flux_njy, flux_err_njy, old_calib_mean, old_calib_err, new_calib_mean, new_calib_err];
        finite_or_out_of_range(f, v, &args)
    }
}

// ------------------------------------------------------------------ photo_calib

scalar_fn! {
    sql_name = "photo_calib_const";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION photo_calib(calib_mean float8, calib_err float8 DEFAULT 0) RETURNS photo_calib
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'photo_calib_const';
           COMMENT ON FUNCTION photo_calib(float8, float8) IS 'A constant photometric calibration (nJy per count).';";
    fn photo_calib_const(calib_mean: f64, calib_err: f64) -> VarlenaRet {
        VarlenaRet(PhotoCalib::constant(calib_mean, calib_err).or_sql_error("photo_calib").encode())
    }
}

scalar_fn! {
    sql_name = "calibration_at";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION calibration(pc photo_calib, x float8, y float8) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'calibration_at';
           COMMENT ON FUNCTION calibration(photo_calib, float8, float8) IS
             'The calibration (nJy per count) at 0-based pixel (x, y).';";
    fn calibration_at(pc: Rc<PhotoCalib>, x: f64, y: f64) -> f64 {
        finite_or_out_of_range("calibration", pc.at(x, y), &[x, y])
    }
}

scalar_fn! {
    sql_name = "nanojansky_pc";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION nanojansky(pc photo_calib, inst_flux float8, x float8, y float8) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nanojansky_pc';
           COMMENT ON FUNCTION nanojansky(photo_calib, float8, float8, float8) IS
             'Calibrated flux in nJy of a source at 0-based pixel (x, y): inst_flux * calibration(pc, x, y).';";
    fn nanojansky_pc(pc: Rc<PhotoCalib>, inst_flux: f64, x: f64, y: f64) -> f64 {
        finite_or_out_of_range("nanojansky", photometry::nanojansky(inst_flux, pc.at(x, y)), &[inst_flux, x, y])
    }
}

scalar_fn! {
    sql_name = "nanojansky_err_pc";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION nanojansky_err(pc photo_calib, inst_flux float8, inst_flux_err float8, x float8, y float8)
           RETURNS float8 IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nanojansky_err_pc';
           COMMENT ON FUNCTION nanojansky_err(photo_calib, float8, float8, float8, float8) IS
             'Error of nanojansky(pc, ...): hypot(inst_flux_err * c, inst_flux * calibrationErr), c = calibration(pc, x, y).';";
    fn nanojansky_err_pc(pc: Rc<PhotoCalib>, inst_flux: f64, inst_flux_err: f64, x: f64, y: f64) -> f64 {
        let ie = err("nanojansky_err", "inst_flux_err", inst_flux_err);
        let v = photometry::nanojansky_err(inst_flux, ie, pc.at(x, y), pc.err);
        finite_or_out_of_range("nanojansky_err", v, &[inst_flux, inst_flux_err, x, y])
    }
}

scalar_fn! {
    sql_name = "calibration_err";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION calibration_err(pc photo_calib) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'calibration_err';
           COMMENT ON FUNCTION calibration_err(photo_calib) IS 'The calibration error (nJy per count).';";
    fn calibration_err(pc: Rc<PhotoCalib>) -> f64 {
        pc.err
    }
}

// ------------------------------------------------------------------ wcs

scalar_fn! {
    sql_name = "pixel_to_sky";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION pixel_to_sky(w wcs, x float8, y float8) RETURNS sky_point
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'pixel_to_sky';
           COMMENT ON FUNCTION pixel_to_sky(wcs, float8, float8) IS
             'Sky position (ra, dec) in degrees of 0-based pixel (x, y). NaN pixels give (NaN, NaN).';";
    fn pixel_to_sky(w: Rc<Wcs>, x: f64, y: f64) -> Float8Row<2> {
        let (ra, dec) = w.pixel_to_sky(x, y);
        // A finite pixel always has a position, unless the distortion polynomials overflow.
        finite_or_out_of_range("pixel_to_sky", ra, &[x, y]);
        Float8Row([ra, dec])
    }
}

scalar_fn! {
    sql_name = "sky_to_pixel";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION sky_to_pixel(w wcs, ra float8, \"dec\" float8) RETURNS pixel_point
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_to_pixel';
           COMMENT ON FUNCTION sky_to_pixel(wcs, float8, float8) IS
             '0-based pixel (x, y) of a sky position; (NaN, NaN) for NaN input or a position 90 degrees or more from CRVAL.';";
    fn sky_to_pixel(w: Rc<Wcs>, ra: f64, dec: f64) -> Float8Row<2> {
        if ra.is_nan() || dec.is_nan() {
            return Float8Row([f64::NAN, f64::NAN]);
        }
        let ra = validate::ra("ra", ra).or_sql_error("sky_to_pixel");
        let dec = validate::dec("dec", dec).or_sql_error("sky_to_pixel");
        let (x, y) = w.sky_to_pixel(ra, dec);
        Float8Row([x, y])
    }
}

scalar_fn! {
    sql_name = "pixel_to_sky_cov";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION pixel_to_sky_cov(w wcs, x float8, y float8, x_err float8, y_err float8, xy_cov float8 DEFAULT 0,
                                           OUT ra_err_arcsec float8, OUT dec_err_arcsec float8, OUT ra_dec_cov float8)
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'pixel_to_sky_cov';
           COMMENT ON FUNCTION pixel_to_sky_cov(wcs, float8, float8, float8, float8, float8) IS
             'Centroid errors (pixels, covariance pixels^2) propagated to the sky through the local Jacobian: errors in arcsec along RA (on the sky, i.e. of ra * cos(dec)) and dec, covariance in arcsec^2.';";
    fn pixel_to_sky_cov(w: Rc<Wcs>, x: f64, y: f64, x_err: f64, y_err: f64, xy_cov: f64) -> Float8Row<3> {
        let f = "pixel_to_sky_cov";
        let (x_err, y_err) = (err(f, "x_err", x_err), err(f, "y_err", y_err));
        // A covariance matrix: |xy_cov| <= x_err * y_err (NaN passes, NaN out).
        if xy_cov.abs() > x_err * y_err {
            Err::<(), _>(skycat_core::SkyError::invalid(
                "xy_cov",
                "a covariance with |xy_cov| <= x_err * y_err",
                validate::show(xy_cov),
            ))
            .or_sql_error(f);
        }
        let (ra_err, dec_err, cov) = w.pixel_to_sky_cov(x, y, x_err, y_err, xy_cov);
        for v in [ra_err, dec_err, cov] {
            finite_or_out_of_range(f, v, &[x, y, x_err, y_err, xy_cov]);
        }
        Float8Row([ra_err, dec_err, cov])
    }
}
