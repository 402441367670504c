//! Writing Parquet files the way the reader wants them: zstd, min/max statistics per row
//! group and page, a fixed number of rows per row group.
//!
//! The file is written under a temporary name next to the target and renamed when it is
//! complete, so an error or a cancelled query never leaves a truncated file under the final
//! name (the temporary file is removed when the writer is dropped unfinished).

use super::{io_error, FilesError, FilesResult};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::fs::File;
use std::path::{Path, PathBuf};

pub struct ParquetFileWriter {
    writer: Option<ArrowWriter<File>>,
    temporary: PathBuf,
    target: PathBuf,
    rows: u64,
}

fn write_error(path: &Path, e: impl ToString) -> FilesError {
    FilesError::Io { path: path.display().to_string(), message: e.to_string(), not_found: false }
}

impl ParquetFileWriter {
    /// Creates the target's parent directories and a temporary file beside the target.
    pub fn create(target: &Path, schema: SchemaRef, row_group_rows: usize) -> FilesResult<Self> {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, &e))?;
        }
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temporary = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&temporary).map_err(|e| io_error(&temporary, &e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_size(row_group_rows.max(1))
            .set_created_by(format!("skycat {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| write_error(&temporary, e))?;
        Ok(ParquetFileWriter { writer: Some(writer), temporary, target: target.to_path_buf(), rows: 0 })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> FilesResult<()> {
        let writer = self.writer.as_mut().expect("writer is open until finish");
        writer.write(batch).map_err(|e| write_error(&self.temporary, e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Flushes the footer, syncs and renames into place; returns the rows written.
    pub fn finish(mut self) -> FilesResult<u64> {
        let writer = self.writer.take().expect("writer is open until finish");
        let file = writer.into_inner().map_err(|e| write_error(&self.temporary, e))?;
        file.sync_all().map_err(|e| io_error(&self.temporary, &e))?;
        std::fs::rename(&self.temporary, &self.target).map_err(|e| io_error(&self.target, &e))?;
        Ok(self.rows)
    }
}

impl Drop for ParquetFileWriter {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::prune::Scalar;
    use super::super::reader::{CatalogFile, FileFormat};
    use super::*;
    use arrow::array::{Array, AsArray, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
    use std::sync::Arc;

    fn batch(schema: &SchemaRef, ids: std::ops::Range<i64>) -> RecordBatch {
        let n = ids.end - ids.start;
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(ids.clone())),
                Arc::new(Float64Array::from_iter((0..n).map(|i| (i % 7 != 0).then_some(i as f64 * 0.5)))),
                Arc::new(StringArray::from_iter_values((0..n).map(|i| ["g", "r", "i"][i as usize % 3]))),
            ],
        )
        .unwrap()
    }

    #[test]
    fn round_trip_with_row_groups_statistics_and_projection() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/dir/t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("flux", DataType::Float64, true),
            Field::new("band", DataType::Utf8, false),
        ]));
        let mut w = ParquetFileWriter::create(&target, schema.clone(), 1000).unwrap();
        w.write(&batch(&schema, 0..1500)).unwrap();
        w.write(&batch(&schema, 1500..2500)).unwrap();
        assert_eq!(w.finish().unwrap(), 2500);
        let names: Vec<_> =
            std::fs::read_dir(target.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");

        let f = CatalogFile::open(&target, FileFormat::Parquet).unwrap();
        assert_eq!(f.row_group_rows(), Some(vec![1000, 1000, 500]));
        let ids = f.column_stats(0);
        assert_eq!(ids[1].min, Some(Scalar::Int(1000)));
        assert_eq!(ids[1].max, Some(Scalar::Int(1999)));
        // Pruning on the sorted id keeps exactly the row group holding 1000..1999.
        use super::super::prune::{CompareOp, Condition};
        let between = [
            (0, Condition::Compare(CompareOp::Ge, Scalar::Int(1200))),
            (0, Condition::Compare(CompareOp::Le, Scalar::Int(1300))),
        ];
        assert_eq!(f.kept_row_groups(&between), vec![1]);
        let flux = f.column_stats(1);
        assert_eq!(flux[0].null_count, Some((0..1000).filter(|i| i % 7 == 0).count() as u64));

        // Project (flux, id) — reversed — from row group 2 only.
        let mut r = f.read(&[1, 0], vec![2], 128).unwrap();
        let mut seen = 0;
        while let Some(b) = r.next_batch().unwrap() {
            let flux = b.column(0).as_primitive::<Float64Type>();
            let id = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let k = id.value(i);
                assert_eq!(k, 2000 + seen as i64);
                let local = (k - 1500) % 1000; // position inside the second written batch
                assert_eq!(flux.is_null(i), local % 7 == 0);
                seen += 1;
            }
        }
        assert_eq!(seen, 500);
    }

    #[test]
    fn unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        {
            let mut w = ParquetFileWriter::create(&dir.path().join("x.parquet"), schema.clone(), 10).unwrap();
            w.write(&RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap()).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.parquet");
        std::fs::write(&bad, b"this is not parquet at all, not even close......").unwrap();
        let err = CatalogFile::open(&bad, FileFormat::Parquet).err().unwrap();
        assert!(err.to_string().contains("bad.parquet"), "{err}");
        let err = CatalogFile::open(&bad, FileFormat::ArrowIpc).err().unwrap();
        assert!(err.to_string().contains("bad.parquet"), "{err}");

        // Truncated: a real file cut in half.
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let good = dir.path().join("good.parquet");
        let mut w = ParquetFileWriter::create(&good, schema.clone(), 100).unwrap();
        w.write(&RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..1000))]).unwrap()).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.parquet");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(CatalogFile::open(&cut, FileFormat::Parquet), Err(FilesError::Corrupt { .. })));
        // Corrupt pages: footer intact, data overwritten.
        let mut garbled = bytes.clone();
        for b in garbled.iter_mut().skip(4).take(bytes.len() / 2) {
            *b = 0xA5;
        }
        let cor = dir.path().join("corrupt.parquet");
        std::fs::write(&cor, &garbled).unwrap();
        let result = CatalogFile::open(&cor, FileFormat::Parquet).and_then(|f| {
            let mut r = f.read(&[0], (0..10).collect(), 100)?;
            while r.next_batch()?.is_some() {}
            Ok(())
        });
        let err = result.expect_err("garbled pages are detected");
        assert!(err.to_string().contains("corrupt.parquet"), "{err}");
    }
}
