//! Drives skycat's nightly Association Pipeline (`sql/ap.sql`, docs/nightly-ap.md) with a night
//! simulated by `skycat-sim`: loads the sky into an AP schema ([`load`]), runs the visits through
//! `ap_prepare_visit` / `ap_associate` / `ap_post_visit` in one session or in three concurrent
//! sessions ([`run`]), scores the association against the simulator's truth ([`score`]) and
//! plots the per-visit latencies ([`plot`]). `make demo`, the end-to-end test and `make bench-ap`
//! all use it, so they exercise one driver.

pub mod load;
pub mod plot;
pub mod run;
pub mod score;

/// `name` quoted as an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The median of `xs` (NaN when empty).
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_and_ident() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(super::median(&[]).is_nan());
        assert_eq!(super::ident("a\"b"), "\"a\"\"b\"");
    }
}
