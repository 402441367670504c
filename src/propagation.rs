//! `propagate`: a star's position carried to another epoch with its proper motion, parallax
//! and radial velocity (skycat_core::propagate, ERFA's eraPmsafe).

use pgrx::pg_sys::Datum;
use skycat_core::propagate;

use crate::errors::OrSqlError;
use crate::fastcall::{scalar_fn, IntoRet};
use crate::sqltypes::Float8Row;

#[allow(clippy::too_many_arguments)] // one value per SQL argument
fn moved(ra: f64, dec: f64, pmra: f64, pmdec: f64, parallax: f64, rv: f64, from: f64, to: f64) -> Float8Row<2> {
    let (ra, dec) = propagate::propagate(ra, dec, pmra, pmdec, parallax, rv, from, to).or_sql_error("propagate");
    Float8Row([ra, dec])
}

crate::fastcall::v1_function! {
    /// The full form: NULL parallax or rv mean 0 (a star without them), any other NULL gives
    /// NULL; so the function is not STRICT and reads the NULL flags itself.
    fn propagate_full(fcinfo) {
        let args = (*fcinfo).args.as_slice(8);
        let value = |i: usize| (!args[i].isnull).then(|| f64::from_bits(args[i].value.value() as u64));
        let (Some(ra), Some(dec), Some(pmra), Some(pmdec), Some(from), Some(to)) =
            (value(0), value(1), value(2), value(3), value(6), value(7))
        else {
            (*fcinfo).isnull = true;
            return Datum::from(0usize);
        };
        let (parallax, rv) = (value(4).unwrap_or(0.0), value(5).unwrap_or(0.0));
        moved(ra, dec, pmra, pmdec, parallax, rv, from, to).into_ret(fcinfo)
    }
    sql(
        "CREATE FUNCTION propagate(ra float8, \"dec\" float8, pmra float8, pmdec float8, parallax float8, rv float8,
                                   epoch_from float8, epoch_to float8) RETURNS sky_point
           IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'propagate_full';
         COMMENT ON FUNCTION propagate(float8, float8, float8, float8, float8, float8, float8, float8) IS
           'Position (ICRS degrees) at epoch_to of a star at (ra, dec) at epoch_from (Julian years) with proper motion pmra = mu_alpha* (d(ra)/dt cos dec) and pmdec in mas/yr, parallax in mas and radial velocity in km/s (NULL parallax or rv: 0): rigorous space motion as ERFA eraPmsafe / astropy apply_space_motion.';",
        name = "propagate_full",
        requires = ["calibration_types"]
    );
}

scalar_fn! {
    /// Proper motion only (parallax 0, rv 0).
    sql_name = "propagate_pm";
    requires = ["calibration_types"];
    sql = "CREATE FUNCTION propagate(ra float8, \"dec\" float8, pmra float8, pmdec float8, epoch_from float8, epoch_to float8)
           RETURNS sky_point IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'propagate_pm';
           COMMENT ON FUNCTION propagate(float8, float8, float8, float8, float8, float8) IS
             'Position (ICRS degrees) at epoch_to of a star at (ra, dec) at epoch_from (Julian years) with proper motion pmra = mu_alpha* and pmdec in mas/yr, parallax and radial velocity 0 (ERFA eraPmsafe).';";
    fn propagate_pm(ra: f64, dec: f64, pmra: f64, pmdec: f64, epoch_from: f64, epoch_to: f64) -> Float8Row<2> {
        moved(ra, dec, pmra, pmdec, 0.0, 0.0, epoch_from, epoch_to)
    }
}
