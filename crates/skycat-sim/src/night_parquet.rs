//! A simulated night as a difference-imaging pipeline leaves it: one directory per visit with
//! the visit's DIASources and its exposure row, plus MOPS's predictions and the truth for the
//! whole night. Written with skycat's own Parquet writer (zstd, statistics), so the
//! `skycat_files` wrapper reads it in place:
//!
//! ```text
//! dir/visit=<visit>/dia_source.parquet   the columns of ap.dia_source_new, in its order
//! dir/visit=<visit>/exposure.parquet     visit, ra, dec, mjd, band, exp_time (one row)
//! dir/mops_pred.parquet                  the columns of ap.mops_pred, every visit
//! dir/truth.parquet                      dia_source_id, kind, truth_id (NULL for artefacts)
//! ```
//!
//! Rows are in the order of [`crate::night::write_csv`]'s files (DIASources by
//! `dia_source_id` within a visit), so the Parquet and CSV forms of a night hold the same rows.

use crate::night::{DiaSource, MopsPred, Night, Truth, Visit};
use skycat_core::files::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use skycat_core::files::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use skycat_core::files::writer::ParquetFileWriter;
use skycat_core::files::FilesResult;
use std::path::Path;
use std::sync::Arc;

/// Rows per row group of the night-wide files (a visit's files hold one row group).
const ROW_GROUP_ROWS: usize = 131_072;
/// Exposure time of a visit (s): the pair of 15 s snaps.
pub const EXP_TIME_S: f64 = 30.0;

fn field(name: &str, t: DataType) -> Field {
    Field::new(name, t, false)
}

/// `visit=<visit>/dia_source.parquet`: the columns of `ap.dia_source_new`, in its order.
pub fn dia_source_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("dia_source_id", DataType::Int64),
        field("visit", DataType::Int64),
        field("detector", DataType::Int32),
        field("ra", DataType::Float64),
        field("dec", DataType::Float64),
        field("ra_err_arcsec", DataType::Float64),
        field("dec_err_arcsec", DataType::Float64),
        field("mjd", DataType::Float64),
        field("band", DataType::Utf8),
        field("psf_flux", DataType::Float64),
        field("psf_flux_err", DataType::Float64),
        field("snr", DataType::Float64),
        field("class_id", DataType::Int32),
    ]))
}

/// `visit=<visit>/exposure.parquet`: the columns of `ap.visit`, then the exposure time.
pub fn exposure_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("visit", DataType::Int64),
        field("ra", DataType::Float64),
        field("dec", DataType::Float64),
        field("mjd", DataType::Float64),
        field("band", DataType::Utf8),
        field("exp_time", DataType::Float64),
    ]))
}

/// `mops_pred.parquet`: the columns of `ap.mops_pred`, in its order.
pub fn mops_pred_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("moving_object_id", DataType::Int64),
        field("visit", DataType::Int64),
        field("ra", DataType::Float64),
        field("dec", DataType::Float64),
        field("ra_err_arcsec", DataType::Float64),
        field("dec_err_arcsec", DataType::Float64),
        field("mjd", DataType::Float64),
    ]))
}

/// `truth.parquet`: what each DIASource is; `truth_id` is NULL for artefacts.
pub fn truth_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("dia_source_id", DataType::Int64),
        field("kind", DataType::Utf8),
        Field::new("truth_id", DataType::Int64, true),
    ]))
}

#[derive(Default)]
struct DiaSourceColumns {
    id: Int64Builder,
    visit: Int64Builder,
    detector: Int32Builder,
    ra: Float64Builder,
    dec: Float64Builder,
    ra_err: Float64Builder,
    dec_err: Float64Builder,
    mjd: Float64Builder,
    band: StringBuilder,
    flux: Float64Builder,
    flux_err: Float64Builder,
    snr: Float64Builder,
    class_id: Int32Builder,
}

impl DiaSourceColumns {
    fn push(&mut self, d: &DiaSource) {
        self.id.append_value(d.dia_source_id);
        self.visit.append_value(d.visit);
        self.detector.append_value(d.detector);
        self.ra.append_value(d.ra);
        self.dec.append_value(d.dec);
        self.ra_err.append_value(d.ra_err_arcsec);
        self.dec_err.append_value(d.dec_err_arcsec);
        self.mjd.append_value(d.mjd);
        self.band.append_value(d.band);
        self.flux.append_value(d.psf_flux);
        self.flux_err.append_value(d.psf_flux_err);
        self.snr.append_value(d.snr);
        self.class_id.append_value(d.class_id);
    }

    fn batch(&mut self, schema: &SchemaRef) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.visit.finish()),
            Arc::new(self.detector.finish()),
            Arc::new(self.ra.finish()),
            Arc::new(self.dec.finish()),
            Arc::new(self.ra_err.finish()),
            Arc::new(self.dec_err.finish()),
            Arc::new(self.mjd.finish()),
            Arc::new(self.band.finish()),
            Arc::new(self.flux.finish()),
            Arc::new(self.flux_err.finish()),
            Arc::new(self.snr.finish()),
            Arc::new(self.class_id.finish()),
        ];
        RecordBatch::try_new(schema.clone(), cols).expect("columns follow the schema")
    }
}

#[derive(Default)]
struct ExposureColumns {
    visit: Int64Builder,
    ra: Float64Builder,
    dec: Float64Builder,
    mjd: Float64Builder,
    band: StringBuilder,
    exp_time: Float64Builder,
}

impl ExposureColumns {
    fn push(&mut self, v: &Visit) {
        self.visit.append_value(v.visit);
        self.ra.append_value(v.ra);
        self.dec.append_value(v.dec);
        self.mjd.append_value(v.mjd);
        self.band.append_value(v.band);
        self.exp_time.append_value(EXP_TIME_S);
    }

    fn batch(&mut self, schema: &SchemaRef) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.visit.finish()),
            Arc::new(self.ra.finish()),
            Arc::new(self.dec.finish()),
            Arc::new(self.mjd.finish()),
            Arc::new(self.band.finish()),
            Arc::new(self.exp_time.finish()),
        ];
        RecordBatch::try_new(schema.clone(), cols).expect("columns follow the schema")
    }
}

#[derive(Default)]
struct MopsPredColumns {
    moving_object_id: Int64Builder,
    visit: Int64Builder,
    ra: Float64Builder,
    dec: Float64Builder,
    ra_err: Float64Builder,
    dec_err: Float64Builder,
    mjd: Float64Builder,
}

impl MopsPredColumns {
    fn push(&mut self, p: &MopsPred) {
        self.moving_object_id.append_value(p.moving_object_id);
        self.visit.append_value(p.visit);
        self.ra.append_value(p.ra);
        self.dec.append_value(p.dec);
        self.ra_err.append_value(p.ra_err_arcsec);
        self.dec_err.append_value(p.dec_err_arcsec);
        self.mjd.append_value(p.mjd);
    }

    fn batch(&mut self, schema: &SchemaRef) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.moving_object_id.finish()),
            Arc::new(self.visit.finish()),
            Arc::new(self.ra.finish()),
            Arc::new(self.dec.finish()),
            Arc::new(self.ra_err.finish()),
            Arc::new(self.dec_err.finish()),
            Arc::new(self.mjd.finish()),
        ];
        RecordBatch::try_new(schema.clone(), cols).expect("columns follow the schema")
    }
}

#[derive(Default)]
struct TruthColumns {
    id: Int64Builder,
    kind: StringBuilder,
    truth_id: Int64Builder,
}

impl TruthColumns {
    fn push(&mut self, d: &DiaSource) {
        let (kind, id) = match d.truth {
            Truth::Object(id) => ("object", Some(id)),
            Truth::Transient(id) => ("transient", Some(id)),
            Truth::Moving(id) => ("moving", Some(id)),
            Truth::Artefact => ("artefact", None),
        };
        self.id.append_value(d.dia_source_id);
        self.kind.append_value(kind);
        self.truth_id.append_option(id);
    }

    fn batch(&mut self, schema: &SchemaRef) -> RecordBatch {
        let cols: Vec<ArrayRef> =
            vec![Arc::new(self.id.finish()), Arc::new(self.kind.finish()), Arc::new(self.truth_id.finish())];
        RecordBatch::try_new(schema.clone(), cols).expect("columns follow the schema")
    }
}

/// Writes the night as Parquet under `dir` (see the module doc for the layout). Files are
/// replaced whole (each is written under a temporary name and renamed when complete).
/// `progress` is called after each visit with the number of visits written.
pub fn write_parquet(night: &Night, dir: &Path, mut progress: impl FnMut(usize)) -> FilesResult<()> {
    let (source_schema, exposure_schema, pred_schema, truth_schema) =
        (dia_source_schema(), exposure_schema(), mops_pred_schema(), truth_schema());
    let mut preds = ParquetFileWriter::create(&dir.join("mops_pred.parquet"), pred_schema.clone(), ROW_GROUP_ROWS)?;
    let mut truth = ParquetFileWriter::create(&dir.join("truth.parquet"), truth_schema.clone(), ROW_GROUP_ROWS)?;
    let (mut source_cols, mut exposure_cols) = (DiaSourceColumns::default(), ExposureColumns::default());
    let (mut pred_cols, mut truth_cols) = (MopsPredColumns::default(), TruthColumns::default());
    for (k, ((v, sources), predictions)) in night.visits.iter().zip(&night.sources).zip(&night.predictions).enumerate()
    {
        let visit_dir = dir.join(format!("visit={}", v.visit));
        let mut w =
            ParquetFileWriter::create(&visit_dir.join("dia_source.parquet"), source_schema.clone(), ROW_GROUP_ROWS)?;
        for d in sources {
            source_cols.push(d);
            truth_cols.push(d);
        }
        w.write(&source_cols.batch(&source_schema))?;
        w.finish()?;
        truth.write(&truth_cols.batch(&truth_schema))?;

        let mut w =
            ParquetFileWriter::create(&visit_dir.join("exposure.parquet"), exposure_schema.clone(), ROW_GROUP_ROWS)?;
        exposure_cols.push(v);
        w.write(&exposure_cols.batch(&exposure_schema))?;
        w.finish()?;

        for p in predictions {
            pred_cols.push(p);
        }
        preds.write(&pred_cols.batch(&pred_schema))?;
        progress(k + 1);
    }
    preds.finish()?;
    truth.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::night::{simulate, NightConfig};
    use skycat_core::files::arrow::array::{Array, AsArray};
    use skycat_core::files::arrow::datatypes::{Float64Type, Int32Type, Int64Type};
    use std::path::PathBuf;

    fn small() -> NightConfig {
        NightConfig { objects: 50_000, visits: 12, sources_per_visit: 500, ..NightConfig::default() }
    }

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir().join(format!("skycat-sim-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    use crate::read_back::read_all;

    fn names_and_types(schema: &SchemaRef) -> Vec<(String, DataType)> {
        schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect()
    }

    #[test]
    fn round_trips_per_visit_and_night_wide() {
        let night = simulate(&small());
        let dir = TempDir::new("night-parquet");
        let mut seen = Vec::new();
        write_parquet(&night, &dir.0, |k| seen.push(k)).unwrap();
        assert_eq!(seen, (1..=night.visits.len()).collect::<Vec<_>>());

        let source_types = names_and_types(&dia_source_schema());
        let expected: Vec<(&str, DataType)> = vec![
            ("dia_source_id", DataType::Int64),
            ("visit", DataType::Int64),
            ("detector", DataType::Int32),
            ("ra", DataType::Float64),
            ("dec", DataType::Float64),
            ("ra_err_arcsec", DataType::Float64),
            ("dec_err_arcsec", DataType::Float64),
            ("mjd", DataType::Float64),
            ("band", DataType::Utf8),
            ("psf_flux", DataType::Float64),
            ("psf_flux_err", DataType::Float64),
            ("snr", DataType::Float64),
            ("class_id", DataType::Int32),
        ];
        assert_eq!(source_types, expected.iter().map(|(n, t)| (n.to_string(), t.clone())).collect::<Vec<_>>());

        for (k, v) in night.visits.iter().enumerate() {
            let visit_dir = dir.0.join(format!("visit={}", v.visit));
            let (schema, batches) = read_all(&visit_dir.join("dia_source.parquet"));
            assert_eq!(names_and_types(&schema), source_types);
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(rows, night.sources[k].len(), "visit {}", v.visit);
            let mut want = night.sources[k].iter();
            for b in &batches {
                let id = b.column(0).as_primitive::<Int64Type>();
                let visit = b.column(1).as_primitive::<Int64Type>();
                let detector = b.column(2).as_primitive::<Int32Type>();
                let ra = b.column(3).as_primitive::<Float64Type>();
                let dec = b.column(4).as_primitive::<Float64Type>();
                let band = b.column(8).as_string::<i32>();
                let flux = b.column(9).as_primitive::<Float64Type>();
                let class_id = b.column(12).as_primitive::<Int32Type>();
                for i in 0..b.num_rows() {
                    let d = want.next().expect("no more rows than sources");
                    assert_eq!(id.value(i), d.dia_source_id);
                    assert_eq!(visit.value(i), d.visit);
                    assert_eq!(detector.value(i), d.detector);
                    assert_eq!(ra.value(i).to_bits(), d.ra.to_bits());
                    assert_eq!(dec.value(i).to_bits(), d.dec.to_bits());
                    assert_eq!(band.value(i), d.band);
                    assert_eq!(flux.value(i).to_bits(), d.psf_flux.to_bits());
                    assert_eq!(class_id.value(i), d.class_id);
                }
            }

            let (schema, batches) = read_all(&visit_dir.join("exposure.parquet"));
            assert_eq!(
                names_and_types(&schema),
                vec![
                    ("visit".to_string(), DataType::Int64),
                    ("ra".to_string(), DataType::Float64),
                    ("dec".to_string(), DataType::Float64),
                    ("mjd".to_string(), DataType::Float64),
                    ("band".to_string(), DataType::Utf8),
                    ("exp_time".to_string(), DataType::Float64),
                ]
            );
            let b = &batches[0];
            assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
            assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), v.visit);
            assert_eq!(b.column(1).as_primitive::<Float64Type>().value(0).to_bits(), v.ra.to_bits());
            assert_eq!(b.column(3).as_primitive::<Float64Type>().value(0).to_bits(), v.mjd.to_bits());
            assert_eq!(b.column(4).as_string::<i32>().value(0), v.band);
            assert_eq!(b.column(5).as_primitive::<Float64Type>().value(0), EXP_TIME_S);
        }
        let visit_dirs = std::fs::read_dir(&dir.0).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
        assert_eq!(visit_dirs, night.visits.len());

        // MOPS predictions: every visit's, in order.
        let (schema, batches) = read_all(&dir.0.join("mops_pred.parquet"));
        assert_eq!(
            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(),
            ["moving_object_id", "visit", "ra", "dec", "ra_err_arcsec", "dec_err_arcsec", "mjd"]
        );
        let preds: Vec<&MopsPred> = night.predictions.iter().flatten().collect();
        assert!(!preds.is_empty());
        let mut want = preds.iter();
        for b in &batches {
            let id = b.column(0).as_primitive::<Int64Type>();
            let visit = b.column(1).as_primitive::<Int64Type>();
            let ra = b.column(2).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                let p = want.next().expect("no more rows than predictions");
                assert_eq!((id.value(i), visit.value(i)), (p.moving_object_id, p.visit));
                assert_eq!(ra.value(i).to_bits(), p.ra.to_bits());
            }
        }
        assert!(want.next().is_none(), "every prediction written");

        // Truth: one row per DIASource; NULL truth id exactly for artefacts.
        let (schema, batches) = read_all(&dir.0.join("truth.parquet"));
        assert_eq!(
            names_and_types(&schema),
            vec![
                ("dia_source_id".to_string(), DataType::Int64),
                ("kind".to_string(), DataType::Utf8),
                ("truth_id".to_string(), DataType::Int64),
            ]
        );
        assert!(schema.field(2).is_nullable());
        let sources: Vec<&DiaSource> = night.sources.iter().flatten().collect();
        let mut want = sources.iter();
        let mut artefacts = 0;
        for b in &batches {
            let id = b.column(0).as_primitive::<Int64Type>();
            let kind = b.column(1).as_string::<i32>();
            let truth_id = b.column(2).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let d = want.next().expect("no more rows than sources");
                assert_eq!(id.value(i), d.dia_source_id);
                let got = (!truth_id.is_null(i)).then(|| truth_id.value(i));
                match d.truth {
                    Truth::Object(t) => assert_eq!((kind.value(i), got), ("object", Some(t))),
                    Truth::Transient(t) => assert_eq!((kind.value(i), got), ("transient", Some(t))),
                    Truth::Moving(t) => assert_eq!((kind.value(i), got), ("moving", Some(t))),
                    Truth::Artefact => {
                        assert_eq!((kind.value(i), got), ("artefact", None));
                        artefacts += 1;
                    }
                }
            }
        }
        assert!(want.next().is_none(), "every DIASource has its truth row");
        assert!(artefacts > 0);
    }

    #[test]
    fn rewriting_replaces_the_files() {
        let night = simulate(&NightConfig { objects: 5_000, visits: 3, sources_per_visit: 100, ..small() });
        let dir = TempDir::new("night-parquet-rewrite");
        write_parquet(&night, &dir.0, |_| {}).unwrap();
        write_parquet(&night, &dir.0, |_| {}).unwrap();
        let v = night.visits[0].visit;
        let names: Vec<String> = std::fs::read_dir(dir.0.join(format!("visit={v}")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(names, ["dia_source.parquet", "exposure.parquet"], "no temporary files left");
        let (_, batches) = read_all(&dir.0.join(format!("visit={v}/dia_source.parquet")));
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), night.sources[0].len());
    }
}
