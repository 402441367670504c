//! A simulated night as image processing leaves it: one directory per visit with the visit's
//! DIASources and its exposure metadata (the visit row, its two snaps, one row per CCD and per
//! amplifier of each snap: [`crate::night::visit_exposures`]), plus MOPS's predictions and the
//! truth for the whole night. Written with skycat's own Parquet writer (zstd, statistics), so
//! the `skycat_files` wrapper reads it in place:
//!
//! ```text
//! dir/visit=<visit>/dia_source.parquet             the columns of ap.dia_source_new, in its order
//! dir/visit=<visit>/visit.parquet                  visit, ra, dec, mjd, band (one row)
//! dir/visit=<visit>/fpa_exposure.parquet           exposure_id, ra, dec, mjd, band, exp_time (2 rows)
//! dir/visit=<visit>/fpa_exposure_to_visit.parquet  exposure_id, visit (2 rows)
//! dir/visit=<visit>/ccd_exposure.parquet           exposure_id, ccd, ra, dec, zero_point,
//!                                                  seeing_arcsec, sky_background (2 x 189 rows)
//! dir/visit=<visit>/amp_exposure.parquet           exposure_id, ccd, amp, gain, read_noise,
//!                                                  bias_level (2 x 189 x 16 rows)
//! dir/mops_pred.parquet                            the columns of ap.mops_pred, every visit
//! dir/truth.parquet                                dia_source_id, kind, truth_id (NULL for artefacts)
//! ```
//!
//! The five exposure files are what `skycat.ap_exposure_files` declares foreign tables over and
//! `ap_post_visit` ingests ([`write_exposures`] writes them alone).
//!
//! Rows are in the order of [`crate::night::write_csv`]'s files (DIASources by
//! `dia_source_id` within a visit), so the Parquet and CSV forms of a night hold the same rows.

use crate::night::{DiaSource, MopsPred, Night, Truth, VisitExposures};
use skycat_core::files::arrow::array::{
    ArrayRef, Float64Array, Float64Builder, Int32Array, Int32Builder, Int64Array, Int64Builder, RecordBatch,
    StringArray, StringBuilder,
};
use skycat_core::files::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use skycat_core::files::writer::ParquetFileWriter;
use skycat_core::files::FilesResult;
use std::path::Path;
use std::sync::Arc;

/// Rows per row group of the night-wide files (a visit's files hold one row group).
const ROW_GROUP_ROWS: usize = 131_072;

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

/// The exposure metadata files of a visit directory, in the order they are written.
pub const EXPOSURE_FILES: [&str; 5] = [
    "visit.parquet",
    "fpa_exposure.parquet",
    "fpa_exposure_to_visit.parquet",
    "ccd_exposure.parquet",
    "amp_exposure.parquet",
];

/// `visit=<visit>/visit.parquet`: the columns of `ap.visit`, one row.
pub fn visit_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("visit", DataType::Int64),
        field("ra", DataType::Float64),
        field("dec", DataType::Float64),
        field("mjd", DataType::Float64),
        field("band", DataType::Utf8),
    ]))
}

/// `visit=<visit>/fpa_exposure.parquet`: one row per snap.
pub fn fpa_exposure_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("exposure_id", DataType::Int64),
        field("ra", DataType::Float64),
        field("dec", DataType::Float64),
        field("mjd", DataType::Float64),
        field("band", DataType::Utf8),
        field("exp_time", DataType::Float64),
    ]))
}

/// `visit=<visit>/fpa_exposure_to_visit.parquet`: one row per snap.
pub fn fpa_exposure_to_visit_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![field("exposure_id", DataType::Int64), field("visit", DataType::Int64)]))
}

/// `visit=<visit>/ccd_exposure.parquet`: one row per CCD per snap.
pub fn ccd_exposure_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("exposure_id", DataType::Int64),
        field("ccd", DataType::Int32),
        field("ra", DataType::Float64),
        field("dec", DataType::Float64),
        field("zero_point", DataType::Float64),
        field("seeing_arcsec", DataType::Float64),
        field("sky_background", DataType::Float64),
    ]))
}

/// `visit=<visit>/amp_exposure.parquet`: one row per amplifier per CCD per snap.
pub fn amp_exposure_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("exposure_id", DataType::Int64),
        field("ccd", DataType::Int32),
        field("amp", DataType::Int32),
        field("gain", DataType::Float64),
        field("read_noise", DataType::Float64),
        field("bias_level", DataType::Float64),
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

/// One file of one row group from whole columns.
fn write_file(path: &Path, schema: SchemaRef, cols: Vec<ArrayRef>) -> FilesResult<()> {
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("columns follow the schema");
    let mut w = ParquetFileWriter::create(path, schema, ROW_GROUP_ROWS)?;
    w.write(&batch)?;
    w.finish()?;
    Ok(())
}

/// Writes the five exposure metadata files of one visit into `dir/visit=<visit>/` (see the
/// module doc), rows in the order of `e`'s lists. A list left empty gives a file without rows.
pub fn write_visit_exposures(dir: &Path, e: &VisitExposures) -> FilesResult<()> {
    let visit_dir = dir.join(format!("visit={}", e.visit.visit));
    let v = &e.visit;
    write_file(
        &visit_dir.join("visit.parquet"),
        visit_schema(),
        vec![
            Arc::new(Int64Array::from(vec![v.visit])),
            Arc::new(Float64Array::from(vec![v.ra])),
            Arc::new(Float64Array::from(vec![v.dec])),
            Arc::new(Float64Array::from(vec![v.mjd])),
            Arc::new(StringArray::from(vec![v.band])),
        ],
    )?;
    let f = &e.fpa;
    write_file(
        &visit_dir.join("fpa_exposure.parquet"),
        fpa_exposure_schema(),
        vec![
            Arc::new(f.iter().map(|x| x.exposure_id).collect::<Int64Array>()),
            Arc::new(f.iter().map(|x| x.ra).collect::<Float64Array>()),
            Arc::new(f.iter().map(|x| x.dec).collect::<Float64Array>()),
            Arc::new(f.iter().map(|x| x.mjd).collect::<Float64Array>()),
            Arc::new(f.iter().map(|x| Some(x.band)).collect::<StringArray>()),
            Arc::new(f.iter().map(|x| x.exp_time).collect::<Float64Array>()),
        ],
    )?;
    let t = &e.to_visit;
    write_file(
        &visit_dir.join("fpa_exposure_to_visit.parquet"),
        fpa_exposure_to_visit_schema(),
        vec![
            Arc::new(t.iter().map(|x| x.exposure_id).collect::<Int64Array>()),
            Arc::new(t.iter().map(|x| x.visit).collect::<Int64Array>()),
        ],
    )?;
    let c = &e.ccds;
    write_file(
        &visit_dir.join("ccd_exposure.parquet"),
        ccd_exposure_schema(),
        vec![
            Arc::new(c.iter().map(|x| x.exposure_id).collect::<Int64Array>()),
            Arc::new(c.iter().map(|x| x.ccd).collect::<Int32Array>()),
            Arc::new(c.iter().map(|x| x.ra).collect::<Float64Array>()),
            Arc::new(c.iter().map(|x| x.dec).collect::<Float64Array>()),
            Arc::new(c.iter().map(|x| x.zero_point).collect::<Float64Array>()),
            Arc::new(c.iter().map(|x| x.seeing_arcsec).collect::<Float64Array>()),
            Arc::new(c.iter().map(|x| x.sky_background).collect::<Float64Array>()),
        ],
    )?;
    let a = &e.amps;
    write_file(
        &visit_dir.join("amp_exposure.parquet"),
        amp_exposure_schema(),
        vec![
            Arc::new(a.iter().map(|x| x.exposure_id).collect::<Int64Array>()),
            Arc::new(a.iter().map(|x| x.ccd).collect::<Int32Array>()),
            Arc::new(a.iter().map(|x| x.amp).collect::<Int32Array>()),
            Arc::new(a.iter().map(|x| x.gain).collect::<Float64Array>()),
            Arc::new(a.iter().map(|x| x.read_noise).collect::<Float64Array>()),
            Arc::new(a.iter().map(|x| x.bias_level).collect::<Float64Array>()),
        ],
    )
}

/// Writes only the exposure metadata files of every visit of the night under `dir` (what the
/// AP ingests at each post). `progress` is called after each visit with the number written.
pub fn write_exposures(night: &Night, dir: &Path, mut progress: impl FnMut(usize)) -> FilesResult<()> {
    for (k, v) in night.visits.iter().enumerate() {
        write_visit_exposures(dir, &night.exposures(v))?;
        progress(k + 1);
    }
    Ok(())
}

/// Writes the night as Parquet under `dir` (see the module doc for the layout). Files are
/// replaced whole (each is written under a temporary name and renamed when complete).
/// `progress` is called after each visit with the number of visits written.
pub fn write_parquet(night: &Night, dir: &Path, mut progress: impl FnMut(usize)) -> FilesResult<()> {
    let (source_schema, pred_schema, truth_schema) = (dia_source_schema(), mops_pred_schema(), truth_schema());
    let mut preds = ParquetFileWriter::create(&dir.join("mops_pred.parquet"), pred_schema.clone(), ROW_GROUP_ROWS)?;
    let mut truth = ParquetFileWriter::create(&dir.join("truth.parquet"), truth_schema.clone(), ROW_GROUP_ROWS)?;
    let mut source_cols = DiaSourceColumns::default();
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

        write_visit_exposures(dir, &night.exposures(v))?;

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

    /// Every row of `path` (one column per schema field, checked against `schema`).
    fn read_checked(path: &Path, schema: SchemaRef) -> Vec<RecordBatch> {
        let (got, batches) = read_all(path);
        assert_eq!(names_and_types(&got), names_and_types(&schema), "{}", path.display());
        batches
    }

    fn f64s(b: &RecordBatch, i: usize) -> Vec<f64> {
        b.column(i).as_primitive::<Float64Type>().values().to_vec()
    }

    fn i64s(b: &RecordBatch, i: usize) -> Vec<i64> {
        b.column(i).as_primitive::<Int64Type>().values().to_vec()
    }

    fn i32s(b: &RecordBatch, i: usize) -> Vec<i32> {
        b.column(i).as_primitive::<Int32Type>().values().to_vec()
    }

    /// A band as written back into the `&'static str` the truth uses.
    fn band(s: &str) -> &'static str {
        crate::BANDS.iter().find(|b| **b == s).expect("a band")
    }

    /// The five exposure files of `visit` under `dir`, read back into the truth's types.
    fn read_exposures(dir: &Path, visit: i64) -> VisitExposures {
        use crate::night::{AmpExposure, CcdExposure, FpaExposure, FpaExposureToVisit, Visit};
        let vd = dir.join(format!("visit={visit}"));
        let mut e = VisitExposures {
            visit: Visit { visit: 0, ra: 0.0, dec: 0.0, mjd: 0.0, band: "" },
            fpa: vec![],
            to_visit: vec![],
            ccds: vec![],
            amps: vec![],
        };
        let vb = read_checked(&vd.join("visit.parquet"), visit_schema());
        assert_eq!(vb.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        let b = &vb[0];
        e.visit = Visit {
            visit: i64s(b, 0)[0],
            ra: f64s(b, 1)[0],
            dec: f64s(b, 2)[0],
            mjd: f64s(b, 3)[0],
            band: band(b.column(4).as_string::<i32>().value(0)),
        };
        for b in read_checked(&vd.join("fpa_exposure.parquet"), fpa_exposure_schema()) {
            let bands = b.column(4).as_string::<i32>();
            for i in 0..b.num_rows() {
                e.fpa.push(FpaExposure {
                    exposure_id: i64s(&b, 0)[i],
                    ra: f64s(&b, 1)[i],
                    dec: f64s(&b, 2)[i],
                    mjd: f64s(&b, 3)[i],
                    band: band(bands.value(i)),
                    exp_time: f64s(&b, 5)[i],
                });
            }
        }
        for b in read_checked(&vd.join("fpa_exposure_to_visit.parquet"), fpa_exposure_to_visit_schema()) {
            for (exposure_id, visit) in i64s(&b, 0).into_iter().zip(i64s(&b, 1)) {
                e.to_visit.push(FpaExposureToVisit { exposure_id, visit });
            }
        }
        for b in read_checked(&vd.join("ccd_exposure.parquet"), ccd_exposure_schema()) {
            let (id, ccd, ra, dec) = (i64s(&b, 0), i32s(&b, 1), f64s(&b, 2), f64s(&b, 3));
            let (zp, seeing, sky) = (f64s(&b, 4), f64s(&b, 5), f64s(&b, 6));
            for i in 0..b.num_rows() {
                e.ccds.push(CcdExposure {
                    exposure_id: id[i],
                    ccd: ccd[i],
                    ra: ra[i],
                    dec: dec[i],
                    zero_point: zp[i],
                    seeing_arcsec: seeing[i],
                    sky_background: sky[i],
                });
            }
        }
        for b in read_checked(&vd.join("amp_exposure.parquet"), amp_exposure_schema()) {
            let (id, ccd, amp, gain, rn, bias) =
                (i64s(&b, 0), i32s(&b, 1), i32s(&b, 2), f64s(&b, 3), f64s(&b, 4), f64s(&b, 5));
            for i in 0..b.num_rows() {
                e.amps.push(AmpExposure {
                    exposure_id: id[i],
                    ccd: ccd[i],
                    amp: amp[i],
                    gain: gain[i],
                    read_noise: rn[i],
                    bias_level: bias[i],
                });
            }
        }
        e
    }

    #[test]
    fn exposure_files_alone_and_empty_lists() {
        let night = simulate(&NightConfig { objects: 5_000, visits: 3, sources_per_visit: 100, ..small() });
        let dir = TempDir::new("night-exposures");
        let mut seen = Vec::new();
        write_exposures(&night, &dir.0, |k| seen.push(k)).unwrap();
        assert_eq!(seen, [1, 2, 3]);
        for v in &night.visits {
            let names: std::collections::BTreeSet<String> = std::fs::read_dir(dir.0.join(format!("visit={}", v.visit)))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, EXPOSURE_FILES.iter().map(|s| s.to_string()).collect());
            let e = read_exposures(&dir.0, v.visit);
            assert_eq!(e, night.exposures(v));
            assert_eq!((e.fpa.len(), e.to_visit.len(), e.ccds.len(), e.amps.len()), (2, 2, 378, 6048));
        }
        // A list left empty is a valid file without rows.
        let mut e = night.exposures(&night.visits[0]);
        e.amps.clear();
        write_visit_exposures(&dir.0, &e).unwrap();
        let (_, batches) = read_all(&dir.0.join(format!("visit={}/amp_exposure.parquet", e.visit.visit)));
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
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

            // The exposure metadata: read back, equal to the truth function's rows.
            assert_eq!(read_exposures(&dir.0, v.visit), night.exposures(v), "visit {}", v.visit);
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
        assert_eq!(
            names,
            [
                "amp_exposure.parquet",
                "ccd_exposure.parquet",
                "dia_source.parquet",
                "fpa_exposure.parquet",
                "fpa_exposure_to_visit.parquet",
                "visit.parquet"
            ],
            "no temporary files left"
        );
        let (_, batches) = read_all(&dir.0.join(format!("visit={v}/dia_source.parquet")));
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), night.sources[0].len());
    }
}
