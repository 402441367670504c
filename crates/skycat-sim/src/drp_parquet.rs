//! A simulated data release ([`crate::drp`]) as Parquet, one directory per tract with a
//! hive-style key (the `skycat_files` wrapper fills a `tract` column from the path, so the
//! files do not store it), plus the truth and a manifest at the root:
//!
//! ```text
//! dir/tract=<t>/calib.parquet          visit, detector, band, mjd, calib_mean, calib_err, wcs (FITS-keyword JSON)
//! dir/tract=<t>/object.parquet         object_id, ra, dec (measured coadd position)
//! dir/tract=<t>/source.parquet         source_id, object_id, visit, detector, x, y, x_err, y_err,
//!                                      psf_inst_flux, psf_inst_flux_err
//! dir/tract=<t>/dia_source.parquet     dia_source_id, visit, detector, x, y, x_err, y_err,
//!                                      psf_inst_flux, psf_inst_flux_err
//! dir/tract=<t>/forced_source.parquet  object_id, visit, detector, ra, dec, x, y, psf_inst_flux,
//!                                      psf_inst_flux_err
//! dir/tract=<t>/object_truth.parquet   object_id, truth_id
//! dir/truth_object.parquet             truth_id, ra, dec, ra_meas, dec_meas, primary_tract,
//!                                      in_release, variable, u_flux .. y_flux (nJy)
//! dir/release.json                     the configuration, the tracts and the row counts
//! ```
//!
//! Sources, DIA sources and forced measurements are in (visit, object) order and streamed to
//! the files in batches of [`FLUSH_ROWS`] (one tract's objects and calibrations in memory at a
//! time). Written with skycat's own Parquet writer (zstd, statistics); every file is replaced
//! whole. No column is nullable (failed measurements are NaN).

use crate::drp::{simulate_tract_into, true_sky, DrpConfig, DrpDiaSource, DrpSource, RawForced, TractSink, TrueSky};
use skycat_core::files::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use skycat_core::files::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use skycat_core::files::writer::ParquetFileWriter;
use skycat_core::files::{FilesError, FilesResult};
use std::path::Path;
use std::sync::Arc;

/// Rows per batch handed to the writer, and per row group.
pub const FLUSH_ROWS: usize = 65_536;

fn schema(columns: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|(n, t)| Field::new(*n, t.clone(), false)).collect::<Vec<_>>()))
}

pub fn calib_schema() -> SchemaRef {
    use DataType::*;
    schema(&[
        ("visit", Int64),
        ("detector", Int32),
        ("band", Utf8),
        ("mjd", Float64),
        ("calib_mean", Float64),
        ("calib_err", Float64),
        ("wcs", Utf8),
    ])
}

pub fn object_schema() -> SchemaRef {
    use DataType::*;
    schema(&[("object_id", Int64), ("ra", Float64), ("dec", Float64)])
}

pub fn source_schema() -> SchemaRef {
    use DataType::*;
    schema(&[
        ("source_id", Int64),
        ("object_id", Int64),
        ("visit", Int64),
        ("detector", Int32),
        ("x", Float64),
        ("y", Float64),
        ("x_err", Float64),
        ("y_err", Float64),
        ("psf_inst_flux", Float64),
        ("psf_inst_flux_err", Float64),
    ])
}

pub fn dia_source_schema() -> SchemaRef {
    use DataType::*;
    schema(&[
        ("dia_source_id", Int64),
        ("visit", Int64),
        ("detector", Int32),
        ("x", Float64),
        ("y", Float64),
        ("x_err", Float64),
        ("y_err", Float64),
        ("psf_inst_flux", Float64),
        ("psf_inst_flux_err", Float64),
    ])
}

pub fn forced_source_schema() -> SchemaRef {
    use DataType::*;
    schema(&[
        ("object_id", Int64),
        ("visit", Int64),
        ("detector", Int32),
        ("ra", Float64),
        ("dec", Float64),
        ("x", Float64),
        ("y", Float64),
        ("psf_inst_flux", Float64),
        ("psf_inst_flux_err", Float64),
    ])
}

pub fn object_truth_schema() -> SchemaRef {
    use DataType::*;
    schema(&[("object_id", Int64), ("truth_id", Int64)])
}

pub fn truth_object_schema() -> SchemaRef {
    use DataType::*;
    schema(&[
        ("truth_id", Int64),
        ("ra", Float64),
        ("dec", Float64),
        ("ra_meas", Float64),
        ("dec_meas", Float64),
        ("primary_tract", Int32),
        ("in_release", Boolean),
        ("variable", Boolean),
        ("u_flux", Float64),
        ("g_flux", Float64),
        ("r_flux", Float64),
        ("i_flux", Float64),
        ("z_flux", Float64),
        ("y_flux", Float64),
    ])
}

enum Builder {
    I64(Int64Builder),
    I32(Int32Builder),
    F64(Float64Builder),
    Utf8(StringBuilder),
    Bool(BooleanBuilder),
}

impl Builder {
    fn new(t: &DataType) -> Self {
        match t {
            DataType::Int64 => Builder::I64(Int64Builder::new()),
            DataType::Int32 => Builder::I32(Int32Builder::new()),
            DataType::Float64 => Builder::F64(Float64Builder::new()),
            DataType::Utf8 => Builder::Utf8(StringBuilder::new()),
            DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
            other => unreachable!("no builder for {other}"),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// One row being appended: values in schema order.
struct Row<'a> {
    cols: &'a mut [Builder],
    k: usize,
}

impl Row<'_> {
    fn next(&mut self) -> &mut Builder {
        self.k += 1;
        &mut self.cols[self.k - 1]
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        let Builder::I64(b) = self.next() else { panic!("column {} is not int64", self.k - 1) };
        b.append_value(v);
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        let Builder::I32(b) = self.next() else { panic!("column {} is not int32", self.k - 1) };
        b.append_value(v);
        self
    }
    fn f64(&mut self, v: f64) -> &mut Self {
        let Builder::F64(b) = self.next() else { panic!("column {} is not float64", self.k - 1) };
        b.append_value(v);
        self
    }
    fn str(&mut self, v: &str) -> &mut Self {
        let Builder::Utf8(b) = self.next() else { panic!("column {} is not utf8", self.k - 1) };
        b.append_value(v);
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        let Builder::Bool(b) = self.next() else { panic!("column {} is not boolean", self.k - 1) };
        b.append_value(v);
        self
    }
}

/// A Parquet file written row by row, flushed to the writer every [`FLUSH_ROWS`] rows.
struct TableWriter {
    schema: SchemaRef,
    cols: Vec<Builder>,
    pending: usize,
    writer: ParquetFileWriter,
}

impl TableWriter {
    fn create(path: &Path, schema: SchemaRef) -> FilesResult<Self> {
        let cols = schema.fields().iter().map(|f| Builder::new(f.data_type())).collect();
        let writer = ParquetFileWriter::create(path, schema.clone(), FLUSH_ROWS)?;
        Ok(TableWriter { schema, cols, pending: 0, writer })
    }

    fn push(&mut self, fill: impl FnOnce(&mut Row)) -> FilesResult<()> {
        let mut row = Row { cols: &mut self.cols, k: 0 };
        fill(&mut row);
        debug_assert_eq!(row.k, self.cols.len(), "a value for every column");
        self.pending += 1;
        if self.pending >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> FilesResult<()> {
        if self.pending > 0 {
            self.pending = 0;
            let cols: Vec<ArrayRef> = self.cols.iter_mut().map(Builder::finish).collect();
            let batch = RecordBatch::try_new(self.schema.clone(), cols).expect("columns follow the schema");
            self.writer.write(&batch)?;
        }
        Ok(())
    }

    /// Flushes, finishes the file and returns its rows.
    fn finish(mut self) -> FilesResult<u64> {
        self.flush()?;
        self.writer.finish()
    }
}

/// Rows written per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrpCounts {
    pub truth_object: u64,
    pub calib: u64,
    pub object: u64,
    pub object_truth: u64,
    pub source: u64,
    pub dia_source: u64,
    pub forced_source: u64,
}

impl DrpCounts {
    /// (table, rows), in the order of the module doc.
    pub fn tables(&self) -> [(&'static str, u64); 7] {
        [
            ("calib", self.calib),
            ("object", self.object),
            ("source", self.source),
            ("dia_source", self.dia_source),
            ("forced_source", self.forced_source),
            ("object_truth", self.object_truth),
            ("truth_object", self.truth_object),
        ]
    }
}

/// Streams a tract's rows into its three big files; keeps the first error.
struct ParquetSink<'a, P: FnMut(usize)> {
    source: TableWriter,
    dia_source: TableWriter,
    forced: TableWriter,
    error: Option<FilesError>,
    progress: &'a mut P,
}

impl<P: FnMut(usize)> ParquetSink<'_, P> {
    fn keep(&mut self, r: FilesResult<()>) {
        if let (Err(e), None) = (r, &self.error) {
            self.error = Some(e);
        }
    }
}

impl<P: FnMut(usize)> TractSink for ParquetSink<'_, P> {
    fn source(&mut self, s: &DrpSource) {
        let r = self.source.push(|r| {
            r.i64(s.source_id).i64(s.object_id).i64(s.visit).i32(s.detector);
            r.f64(s.x).f64(s.y).f64(s.x_err).f64(s.y_err).f64(s.psf_inst_flux).f64(s.psf_inst_flux_err);
        });
        self.keep(r);
    }

    fn dia_source(&mut self, d: &DrpDiaSource) {
        let r = self.dia_source.push(|r| {
            r.i64(d.dia_source_id).i64(d.visit).i32(d.detector);
            r.f64(d.x).f64(d.y).f64(d.x_err).f64(d.y_err).f64(d.psf_inst_flux).f64(d.psf_inst_flux_err);
        });
        self.keep(r);
    }

    fn forced(&mut self, f: &RawForced) {
        let r = self.forced.push(|r| {
            r.i64(f.object_id).i64(f.visit).i32(f.detector);
            r.f64(f.ra).f64(f.dec).f64(f.x).f64(f.y).f64(f.psf_inst_flux).f64(f.psf_inst_flux_err);
        });
        self.keep(r);
    }

    fn visit_done(&mut self, visits: usize) {
        (self.progress)(visits);
    }
}

/// `truth_object.parquet` of a true sky.
fn write_truth(sky: &TrueSky, dir: &Path) -> FilesResult<u64> {
    let mut w = TableWriter::create(&dir.join("truth_object.parquet"), truth_object_schema())?;
    for o in &sky.objects {
        w.push(|r| {
            r.i64(o.truth_id).f64(o.ra).f64(o.dec).f64(o.ra_meas).f64(o.dec_meas);
            r.i32(o.primary_tract).bool(o.in_release).bool(o.variable);
            for f in o.flux {
                r.f64(f);
            }
        })?;
    }
    w.finish()
}

/// Writes tract `tract` of the release under `dir/tract=<tract>/`, adding its rows to
/// `counts`. `progress` is called after each visit with the number of visits done.
pub fn write_tract(
    config: &DrpConfig,
    sky: &TrueSky,
    tract: i32,
    dir: &Path,
    counts: &mut DrpCounts,
    mut progress: impl FnMut(usize),
) -> FilesResult<()> {
    let tdir = dir.join(format!("tract={tract}"));
    let mut sink = ParquetSink {
        source: TableWriter::create(&tdir.join("source.parquet"), source_schema())?,
        dia_source: TableWriter::create(&tdir.join("dia_source.parquet"), dia_source_schema())?,
        forced: TableWriter::create(&tdir.join("forced_source.parquet"), forced_source_schema())?,
        error: None,
        progress: &mut progress,
    };
    let frame = simulate_tract_into(config, sky, tract, &mut sink);
    if let Some(e) = sink.error.take() {
        return Err(e);
    }
    counts.source += sink.source.finish()?;
    counts.dia_source += sink.dia_source.finish()?;
    counts.forced_source += sink.forced.finish()?;

    let mut w = TableWriter::create(&tdir.join("calib.parquet"), calib_schema())?;
    for c in &frame.calibs {
        w.push(|r| {
            r.i64(c.visit).i32(c.detector).str(c.band).f64(c.mjd).f64(c.calib_mean).f64(c.calib_err);
            r.str(&c.wcs.to_json());
        })?;
    }
    counts.calib += w.finish()?;
    let mut objects = TableWriter::create(&tdir.join("object.parquet"), object_schema())?;
    let mut truth = TableWriter::create(&tdir.join("object_truth.parquet"), object_truth_schema())?;
    for o in &frame.objects {
        objects.push(|r| {
            r.i64(o.object_id).f64(o.ra).f64(o.dec);
        })?;
        truth.push(|r| {
            r.i64(o.object_id).i64(o.truth_id);
        })?;
    }
    counts.object += objects.finish()?;
    counts.object_truth += truth.finish()?;
    Ok(())
}

/// `release.json`: the configuration, the tracts and the rows per table.
pub fn release_json(config: &DrpConfig, tracts: &[i32], counts: &DrpCounts) -> String {
    let tracts: Vec<String> = tracts.iter().map(i32::to_string).collect();
    let rows: Vec<String> = counts.tables().iter().map(|(t, n)| format!("\"{t}\": {n}")).collect();
    format!(
        "{{\n  \"num_rings\": {},\n  \"border_deg\": {},\n  \"tracts\": [{}],\n  \"visits_per_tract\": {},\n  \
         \"objects\": {},\n  \"seed\": {},\n  \"ra0\": {},\n  \"dec0\": {},\n  \"rows\": {{{}}}\n}}\n",
        config.num_rings,
        config.border_deg,
        tracts.join(", "),
        config.visits_per_tract,
        config.objects,
        config.seed,
        config.ra0,
        config.dec0,
        rows.join(", ")
    )
}

/// Writes the whole release under `dir` (see the module doc). `progress` is called with
/// (tract index, visits done in that tract) after each visit.
pub fn write_release(config: &DrpConfig, dir: &Path, mut progress: impl FnMut(usize, usize)) -> FilesResult<DrpCounts> {
    let sky = true_sky(config);
    let mut counts = DrpCounts { truth_object: write_truth(&sky, dir)?, ..DrpCounts::default() };
    for (k, &t) in sky.tract_ids.iter().enumerate() {
        write_tract(config, &sky, t, dir, &mut counts, |v| progress(k, v))?;
    }
    let path = dir.join("release.json");
    std::fs::write(&path, release_json(config, &sky.tract_ids, &counts)).map_err(|e| FilesError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
        not_found: false,
    })?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drp::simulate_tract;
    use skycat_core::files::arrow::array::{Array, AsArray};
    use skycat_core::files::arrow::datatypes::{Float64Type, Int32Type, Int64Type};

    use crate::read_back::read_all;

    #[test]
    fn release_round_trips() {
        let config = DrpConfig { objects: 4_000, visits_per_tract: 3, tracts: 2, ..DrpConfig::default() };
        let dir = std::env::temp_dir().join(format!("skycat-sim-drp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let counts = write_release(&config, &dir, |_, _| {}).unwrap();
        let sky = true_sky(&config);
        assert_eq!(counts.truth_object, config.objects as u64);
        let t = sky.tract_ids[1];
        let mem = simulate_tract(&config, &sky, t);
        let tdir = dir.join(format!("tract={t}"));

        let (schema, batches) = read_all(&tdir.join("forced_source.parquet"));
        assert_eq!(schema, forced_source_schema());
        let mut want = mem.forced.iter();
        for b in &batches {
            let (id, det) = (b.column(0).as_primitive::<Int64Type>(), b.column(2).as_primitive::<Int32Type>());
            let (x, flux) = (b.column(5).as_primitive::<Float64Type>(), b.column(7).as_primitive::<Float64Type>());
            for i in 0..b.num_rows() {
                let f = want.next().expect("no more rows than in memory");
                assert_eq!((id.value(i), det.value(i)), (f.object_id, f.detector));
                assert_eq!(x.value(i).to_bits(), f.x.to_bits());
                assert_eq!(flux.value(i).to_bits(), f.psf_inst_flux.to_bits());
            }
        }
        assert!(want.next().is_none());

        let (schema, batches) = read_all(&tdir.join("source.parquet"));
        assert_eq!(schema, source_schema());
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), mem.sources.len());
        assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), mem.sources[0].source_id);

        let (schema, batches) = read_all(&tdir.join("calib.parquet"));
        assert_eq!(schema, calib_schema());
        let wcs = batches[0].column(6).as_string::<i32>().value(0).to_string();
        // The JSON keeps the keywords to float-printing precision: the same pixel, well within 1e-9".
        let back = skycat_core::wcs::Wcs::from_json(&wcs).unwrap();
        let (a, b) = (back.pixel_to_sky(3000.0, 100.0), mem.calibs[0].wcs.pixel_to_sky(3000.0, 100.0));
        assert!(skycat_core::sphere::sep_arcsec(a.0, a.1, b.0, b.1) < 1e-9);
        assert_eq!(batches[0].column(2).as_string::<i32>().value(0), "u");

        let (_, batches) = read_all(&dir.join("truth_object.parquet"));
        let b = &batches[0];
        assert_eq!(b.num_columns(), 14);
        assert_eq!(b.column(5).as_primitive::<Int32Type>().value(0), sky.objects[0].primary_tract);
        assert_eq!(b.column(6).as_boolean().value(0), sky.objects[0].in_release);
        assert_eq!(b.column(10).as_primitive::<Float64Type>().value(0), sky.objects[0].flux[2]);
        assert_eq!(b.column(0).null_count(), 0);

        let json = std::fs::read_to_string(dir.join("release.json")).unwrap();
        assert!(json.contains(&format!("\"forced_source\": {}", counts.forced_source)), "{json}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
