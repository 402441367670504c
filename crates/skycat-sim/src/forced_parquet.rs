//! A ForcedSource-like Parquet dataset as DRP writes it per tract: the light curves of
//! [`crate::forced`] with the columns a forced-photometry table carries (12 in all), split by
//! object range into `tract=<k>/forcedSource.parquet` files, rows sorted by
//! `forced_source_id`. Written with skycat's own Parquet writer (zstd, statistics).

use crate::forced::forced_sources;
use crate::sky::rng;
use crate::BANDS;
use rand::Rng;
use skycat_core::files::arrow::array::{
    ArrayRef, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use skycat_core::files::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use skycat_core::files::writer::ParquetFileWriter;
use skycat_core::files::FilesResult;
use std::path::Path;
use std::sync::Arc;

const FLUSH_ROWS: usize = 65_536;

/// The dataset's schema (also the column list of the benchmark's heap table).
pub fn schema() -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, true);
    Arc::new(Schema::new(vec![
        f("forced_source_id", DataType::Int64),
        f("object_id", DataType::Int64),
        f("visit", DataType::Int64),
        f("detector", DataType::Int16),
        f("band", DataType::Utf8),
        f("mjd", DataType::Float64),
        f("ra", DataType::Float64),
        f("dec", DataType::Float64),
        f("psf_flux", DataType::Float64),
        f("psf_flux_err", DataType::Float64),
        f("sky_bg", DataType::Float32),
        f("flags", DataType::Int32),
    ]))
}

#[derive(Default)]
struct Columns {
    id: Int64Builder,
    object: Int64Builder,
    visit: Int64Builder,
    detector: Int16Builder,
    band: StringBuilder,
    mjd: Float64Builder,
    ra: Float64Builder,
    dec: Float64Builder,
    flux: Float64Builder,
    flux_err: Float64Builder,
    sky: Float32Builder,
    flags: Int32Builder,
    rows: usize,
}

impl Columns {
    fn batch(&mut self, schema: &SchemaRef) -> RecordBatch {
        self.rows = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.object.finish()),
            Arc::new(self.visit.finish()),
            Arc::new(self.detector.finish()),
            Arc::new(self.band.finish()),
            Arc::new(self.mjd.finish()),
            Arc::new(self.ra.finish()),
            Arc::new(self.dec.finish()),
            Arc::new(self.flux.finish()),
            Arc::new(self.flux_err.finish()),
            Arc::new(self.sky.finish()),
            Arc::new(self.flags.finish()),
        ];
        RecordBatch::try_new(schema.clone(), cols).expect("columns follow the schema")
    }
}

/// Writes `objects` objects' light curves into `files` files under `dir`; returns the rows
/// written. `progress` is called with the number of objects done.
pub fn write_forced_parquet(
    dir: &Path,
    objects: usize,
    files: usize,
    row_group_rows: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> FilesResult<u64> {
    let schema = schema();
    let files = files.clamp(1, objects.max(1));
    let per_file = objects.div_ceil(files);
    let mut positions = rng(seed ^ 0x5eed);
    let mut place = |_: i64| -> (f64, f64) {
        (positions.random_range(0.0..360.0), positions.random_range(-1.0f64..1.0).asin().to_degrees())
    };
    let mut cols = Columns::default();
    let mut writer: Option<ParquetFileWriter> = None;
    let mut file_index = usize::MAX;
    let (mut current, mut pos) = (0i64, (0.0, 0.0));
    let mut next_id = 1i64;
    let mut total = 0u64;
    let mut error = None;
    forced_sources(objects, BANDS.len(), 17.0, seed, |s| {
        if error.is_some() {
            return;
        }
        let k = (s.object_id as usize - 1) / per_file;
        if k != file_index {
            let mut step = || -> FilesResult<ParquetFileWriter> {
                if let Some(mut w) = writer.take() {
                    if cols.rows > 0 {
                        w.write(&cols.batch(&schema))?;
                    }
                    total += w.finish()?;
                }
                ParquetFileWriter::create(
                    &dir.join(format!("tract={k}/forcedSource.parquet")),
                    schema.clone(),
                    row_group_rows,
                )
            };
            match step() {
                Ok(w) => writer = Some(w),
                Err(e) => {
                    error = Some(e);
                    return;
                }
            }
            file_index = k;
            progress(s.object_id as usize - 1);
        }
        if s.object_id != current {
            current = s.object_id;
            pos = place(current);
        }
        let visit = (s.mjd * 40.0) as i64;
        cols.id.append_value(next_id);
        next_id += 1;
        cols.object.append_value(s.object_id);
        cols.visit.append_value(visit);
        cols.detector.append_value((visit.wrapping_mul(31).wrapping_add(s.object_id) % 189) as i16);
        cols.band.append_value(BANDS[s.band as usize % BANDS.len()]);
        cols.mjd.append_value(s.mjd);
        cols.ra.append_value(pos.0);
        cols.dec.append_value(pos.1);
        cols.flux.append_value(s.psf_flux);
        cols.flux_err.append_value(s.psf_flux_err);
        cols.sky.append_value(100.0 + (s.mjd.fract() * 50.0) as f32);
        cols.flags.append_value(if s.psf_flux.is_nan() { 1 } else { 0 });
        cols.rows += 1;
        if cols.rows >= FLUSH_ROWS {
            if let Err(e) = writer.as_mut().expect("open").write(&cols.batch(&schema)) {
                error = Some(e);
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(mut w) = writer.take() {
        if cols.rows > 0 {
            w.write(&cols.batch(&schema))?;
        }
        total += w.finish()?;
    }
    progress(objects);
    Ok(total)
}
