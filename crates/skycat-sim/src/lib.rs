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

/// Reading back what the writers wrote, for the round-trip tests.
#[cfg(test)]
pub(crate) mod read_back {
    use skycat_core::files::arrow::array::RecordBatch;
    use skycat_core::files::arrow::datatypes::SchemaRef;
    use skycat_core::files::reader::{CatalogFile, FileFormat};
    use std::path::Path;

    /// Every column of every row group of the Parquet file at `path`.
    pub fn read_all(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
        let f = CatalogFile::open(path, FileFormat::Parquet).expect("readable");
        let schema = f.schema().clone();
        let columns: Vec<usize> = (0..schema.fields().len()).collect();
        let groups: Vec<usize> = (0..f.num_row_groups()).collect();
        let mut r = f.read(&columns, groups, 8192).expect("readable");
        let mut batches = Vec::new();
        while let Some(b) = r.next_batch().expect("readable") {
            batches.push(b);
        }
        (schema, batches)
    }
}
