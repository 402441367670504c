//! Argument validation shared by every SQL-facing function.
//!
//! Conventions (SQL-API.md): ra outside [0, 360) is accepted and wrapped, |dec| > 90 is an
//! error, non-finite values are errors, radii and heights are strictly positive.

use crate::error::{SkyError, SkyResult};
use crate::sphere::wrap_ra;

/// Checks `ra` is finite and returns it wrapped to [0, 360).
pub fn ra(argument: &'static str, ra: f64) -> SkyResult<f64> {
    if !ra.is_finite() {
        return Err(SkyError::invalid(
            argument,
            "a finite number of degrees",
            ra,
        ));
    }
    Ok(wrap_ra(ra))
}

/// Checks `dec` is finite and within [-90, 90].
pub fn dec(argument: &'static str, dec: f64) -> SkyResult<f64> {
    if !dec.is_finite() || !(-90.0..=90.0).contains(&dec) {
        return Err(SkyError::invalid(
            argument,
            "a finite number of degrees in [-90, 90]",
            dec,
        ));
    }
    Ok(dec)
}

/// Checks a strictly positive finite quantity (heights, radii).
pub fn positive(argument: &'static str, unit: &str, value: f64) -> SkyResult<f64> {
    if !value.is_finite() || value <= 0.0 {
        return Err(SkyError::invalid(
            argument,
            format!("a finite number of {unit} greater than 0"),
            value,
        ));
    }
    Ok(value)
}

/// Checks a finite quantity within an inclusive range.
pub fn in_range(
    argument: &'static str,
    unit: &str,
    lo: f64,
    hi: f64,
    value: f64,
) -> SkyResult<f64> {
    if !value.is_finite() || value < lo || value > hi {
        return Err(SkyError::invalid(
            argument,
            format!("a finite number of {unit} in [{lo}, {hi}]"),
            value,
        ));
    }
    Ok(value)
}

/// Checks an integer within an inclusive range.
pub fn int_in_range(argument: &'static str, lo: i64, hi: i64, value: i64) -> SkyResult<i64> {
    if value < lo || value > hi {
        return Err(SkyError::invalid(
            argument,
            format!("an integer in [{lo}, {hi}]"),
            value,
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dec_limits() {
        assert_eq!(dec("dec", 90.0), Ok(90.0));
        assert_eq!(dec("dec", -90.0), Ok(-90.0));
        assert!(dec("dec", 90.000001).is_err());
        assert!(dec("dec", f64::NAN).is_err());
        assert!(dec("dec", f64::NEG_INFINITY).is_err());
    }

    #[test]
    fn ra_wraps_and_rejects_non_finite() {
        assert_eq!(ra("ra", 360.0), Ok(0.0));
        assert_eq!(ra("ra", -90.0), Ok(270.0));
        assert!(ra("ra", f64::INFINITY).is_err());
    }

    #[test]
    fn message_names_argument_and_range() {
        let e = dec("dec2", 91.5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument \"dec2\" must be a finite number of degrees in [-90, 90], got 91.5"
        );
        let e = positive("radius_arcsec", "arcseconds", 0.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument \"radius_arcsec\" must be a finite number of arcseconds greater than 0, got 0"
        );
    }
}
