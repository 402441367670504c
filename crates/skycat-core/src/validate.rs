//! Argument validation shared by every SQL-facing function.
//!
//! Conventions (SQL-API.md): ra outside [0, 360) is accepted and wrapped, |dec| > 90 is an
//! error, non-finite values are errors, radii and heights are strictly positive.

use crate::error::{SkyError, SkyResult};
use crate::sphere::wrap_ra;

/// Most elements any array-returning function builds (8 MB as a bigint[]): covers of cells,
/// stripes and chunks. Larger requests are refused before anything is allocated.
pub const MAX_RESULT_ELEMENTS: u64 = 1_000_000;

/// Refuses a result of about `estimated` elements when it exceeds [`MAX_RESULT_ELEMENTS`].
pub fn result_size(what: &'static str, estimated: u64, hint: &'static str) -> SkyResult<()> {
    if estimated > MAX_RESULT_ELEMENTS {
        return Err(SkyError::TooLarge { what, estimated, limit: MAX_RESULT_ELEMENTS, hint });
    }
    Ok(())
}

/// A vector with room for `n` elements, or `OutOfMemory` instead of aborting the process
/// when the allocation fails (Rust's default on allocation failure is to abort).
pub fn vec_with_capacity<T>(what: &'static str, n: usize) -> SkyResult<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| SkyError::OutOfMemory {
        what,
        bytes: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    })?;
    Ok(v)
}

/// Formats a double the way PostgreSQL prints it in messages: NaN, Infinity, -Infinity,
/// integers without a fraction, exponent notation for very small or large magnitudes.
pub fn show(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 1e-4 && v.abs() < 1e15 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Checks `ra` is finite and returns it wrapped to [0, 360).
pub fn ra(argument: &'static str, ra: f64) -> SkyResult<f64> {
    if !ra.is_finite() {
        return Err(SkyError::invalid(argument, "a finite number of degrees", show(ra)));
    }
    Ok(wrap_ra(ra))
}

/// Checks `dec` is finite and within [-90, 90].
pub fn dec(argument: &'static str, dec: f64) -> SkyResult<f64> {
    if !dec.is_finite() || !(-90.0..=90.0).contains(&dec) {
        return Err(SkyError::invalid(argument, "a finite number of degrees in [-90, 90]", show(dec)));
    }
    Ok(dec)
}

/// Checks a strictly positive finite quantity (heights, radii).
pub fn positive(argument: &'static str, unit: &str, value: f64) -> SkyResult<f64> {
    if !value.is_finite() || value <= 0.0 {
        return Err(SkyError::invalid(argument, format!("a finite number of {unit} greater than 0"), show(value)));
    }
    Ok(value)
}

/// Checks a finite quantity >= 0 (radii where 0 means "the same position").
pub fn non_negative(argument: &'static str, unit: &str, value: f64) -> SkyResult<f64> {
    if !value.is_finite() || value < 0.0 {
        return Err(SkyError::invalid(argument, format!("a finite number of {unit} >= 0"), show(value)));
    }
    Ok(value)
}

/// Checks a finite quantity within an inclusive range.
pub fn in_range(argument: &'static str, unit: &str, lo: f64, hi: f64, value: f64) -> SkyResult<f64> {
    if !value.is_finite() || value < lo || value > hi {
        return Err(SkyError::invalid(
            argument,
            format!("a finite number of {unit} in [{}, {}]", show(lo), show(hi)),
            show(value),
        ));
    }
    Ok(value)
}

/// Checks a finite quantity in (0, hi].
pub fn positive_at_most(argument: &'static str, unit: &str, hi: f64, value: f64) -> SkyResult<f64> {
    if !value.is_finite() || value <= 0.0 || value > hi {
        return Err(SkyError::invalid(
            argument,
            format!("a finite number of {unit} in (0, {}]", show(hi)),
            show(value),
        ));
    }
    Ok(value)
}

/// Checks an integer within an inclusive range.
pub fn int_in_range(argument: &'static str, lo: i64, hi: i64, value: i64) -> SkyResult<i64> {
    if value < lo || value > hi {
        return Err(SkyError::invalid(argument, format!("an integer in [{lo}, {hi}]"), value));
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
        assert_eq!(
            ra("ra", f64::INFINITY).unwrap_err().to_string(),
            "argument \"ra\" must be a finite number of degrees, got Infinity"
        );
    }

    #[test]
    fn shows_values_like_postgres() {
        assert_eq!(show(f64::NAN), "NaN");
        assert_eq!(show(f64::INFINITY), "Infinity");
        assert_eq!(show(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(show(90.0), "90");
        assert_eq!(show(-0.5), "-0.5");
        assert_eq!(show(1e-300), "1e-300");
        assert_eq!(show(2.5e20), "2.5e20");
    }

    #[test]
    fn message_names_argument_and_range() {
        let e = dec("dec2", 91.5).unwrap_err();
        assert_eq!(e.to_string(), "argument \"dec2\" must be a finite number of degrees in [-90, 90], got 91.5");
        let e = positive("radius_arcsec", "arcseconds", 0.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument \"radius_arcsec\" must be a finite number of arcseconds greater than 0, got 0"
        );
    }
}
