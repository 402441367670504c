//! skycat-sim: the project's one data generator. Deterministic from a seed (ChaCha8, whose
//! stream is stable across rand versions), so tests and benchmarks regenerate the same data.
//!
//! So far: skies of positions (uniform on the sphere, or clustered like galaxy groups and star
//! clusters over a uniform background) and a second catalog of the same sky observed again
//! with astrometric noise, with per-source errors: what a cross-match pairs up; raw per-tract
//! source tables (instrumental fluxes, pixel centroids) with per-(visit, detector)
//! calibrations and TAN-SIP WCSs: what calibration turns into a catalog; ForcedSource light
//! curves: what the light-curve aggregates summarise; the same light curves as a 12-column
//! ForcedSource Parquet dataset split per tract: what the file wrapper reads in place; a night
//! of Association Pipeline inputs (visits, DIASources, MOPS predictions) with its truth, as
//! CSV files or as per-visit Parquet as a difference-imaging pipeline writes it; a data release's
//! per-tract DRP outputs (calibrations, objects, sources, DIA sources, forced photometry) with
//! the truth that scores de-duplication, as Parquet.

pub mod drp;
pub mod drp_parquet;
pub mod forced;
pub mod forced_parquet;
pub mod night;
pub mod night_parquet;
pub mod sky;
pub mod tract;

/// LSST's bands, in wavelength order.
pub const BANDS: [&str; 6] = ["u", "g", "r", "i", "z", "y"];

/// A float as CSV for PostgreSQL's COPY: the shortest form that reads back as the same double,
/// NaN spelled as PostgreSQL reads it.
pub fn csv_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}
