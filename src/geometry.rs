//! SQL functions of sky geometry (SQL-API.md section 1).

use pgrx::prelude::*;
use skycat_core::{sphere, validate};

use crate::errors::OrSqlError;

/// Validated (ra wrapped to [0, 360), dec) of a position argument pair.
pub fn position(
    function: &str,
    ra_name: &'static str,
    ra: f64,
    dec_name: &'static str,
    dec: f64,
) -> (f64, f64) {
    let ra = validate::ra(ra_name, ra).or_sql_error(function);
    let dec = validate::dec(dec_name, dec).or_sql_error(function);
    (ra, dec)
}

/// Great-circle separation in arcseconds (Vincenty's formula, accurate at all separations).
#[pg_extern(immutable, parallel_safe)]
fn sep_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (ra1, dec1) = position("sep_arcsec", "ra1", ra1, "dec1", dec1);
    let (ra2, dec2) = position("sep_arcsec", "ra2", ra2, "dec2", dec2);
    sphere::sep_arcsec(ra1, dec1, ra2, dec2)
}

/// Position angle of point 2 seen from point 1, degrees east of north in [0, 360).
#[pg_extern(immutable, parallel_safe)]
fn position_angle(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (ra1, dec1) = position("position_angle", "ra1", ra1, "dec1", dec1);
    let (ra2, dec2) = position("position_angle", "ra2", ra2, "dec2", dec2);
    sphere::position_angle_deg(ra1, dec1, ra2, dec2)
}
