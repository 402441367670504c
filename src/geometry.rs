//! SQL functions of sky geometry (SQL-API.md section 1).

use skycat_core::{sphere, validate};

use crate::errors::OrSqlError;
use crate::fastcall::scalar_fn;

/// Validated (ra wrapped to [0, 360), dec) of a position argument pair.
pub fn position(function: &str, ra_name: &'static str, ra: f64, dec_name: &'static str, dec: f64) -> (f64, f64) {
    let ra = validate::ra(ra_name, ra).or_sql_error(function);
    let dec = validate::dec(dec_name, dec).or_sql_error(function);
    (ra, dec)
}

scalar_fn! {
    /// Great-circle separation in arcseconds, accurate at all separations.
    sql_name = "sep_arcsec";
    sql = "CREATE FUNCTION sep_arcsec(ra1 float8, dec1 float8, ra2 float8, dec2 float8) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sep_arcsec';
           COMMENT ON FUNCTION sep_arcsec(float8, float8, float8, float8) IS
             'Great-circle separation in arcseconds between (ra1, dec1) and (ra2, dec2), ICRS degrees.';";
    fn sep_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
        let (ra1, dec1) = position("sep_arcsec", "ra1", ra1, "dec1", dec1);
        let (ra2, dec2) = position("sep_arcsec", "ra2", ra2, "dec2", dec2);
        sphere::sep_arcsec(ra1, dec1, ra2, dec2)
    }
}

scalar_fn! {
    /// Position angle of point 2 seen from point 1, degrees east of north in [0, 360).
    sql_name = "position_angle";
    sql = "CREATE FUNCTION position_angle(ra1 float8, dec1 float8, ra2 float8, dec2 float8) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'position_angle';
           COMMENT ON FUNCTION position_angle(float8, float8, float8, float8) IS
             'Position angle of (ra2, dec2) seen from (ra1, dec1), degrees east of north in [0, 360).';";
    fn position_angle(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
        let (ra1, dec1) = position("position_angle", "ra1", ra1, "dec1", dec1);
        let (ra2, dec2) = position("position_angle", "ra2", ra2, "dec2", dec2);
        sphere::position_angle_deg(ra1, dec1, ra2, dec2)
    }
}

/// The ra windows `[ra_lo[i], ra_hi[i]]` (at most two, split at 0/360; an unused one is
/// `[1, 0]`) that hold every point within `r_deg` degrees of (ra, dec): what the AP procedures
/// prune BRIN ranges of ra with.
#[pgrx::pg_extern(immutable, parallel_safe)]
fn ap_ra_ranges(
    ra: f64,
    dec: f64,
    r_deg: f64,
) -> pgrx::iter::TableIterator<'static, (pgrx::name!(ra_lo, Vec<f64>), pgrx::name!(ra_hi, Vec<f64>))> {
    let f = "ap_ra_ranges";
    let (ra, dec) = position(f, "ra", ra, "dec", dec);
    let r = validate::non_negative("r_deg", "degrees", r_deg).or_sql_error(f);
    // A hair wider than the circle, so rounding never leaves a rim point outside its window.
    let windows = sphere::cap_ra_windows(ra, dec, r + 1e-9).map(|(lo, hi)| if lo > hi { (1.0, 0.0) } else { (lo, hi) });
    pgrx::iter::TableIterator::once((windows.iter().map(|w| w.0).collect(), windows.iter().map(|w| w.1).collect()))
}
