//! Opening one Parquet or Arrow IPC file: its schema, per-row-group statistics, and a
//! streaming reader of selected columns and row groups.
//!
//! Memory is bounded by the batches in flight: the Parquet reader decodes one row group's
//! pages of the projected columns at a time and hands out `batch_size`-row batches; the
//! Arrow IPC reader reads one record batch at a time. Nothing ever holds a whole file.

use super::prune::{may_match, ColumnStats, Condition, Scalar};
use super::{io_error, FilesError, FilesResult};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::ipc::reader::FileReader as IpcFileReader;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    ArrowIpc,
}

impl FileFormat {
    /// The format named by a `format` option, or else by the file's suffix.
    pub fn resolve(path: &str, option: Option<&str>) -> FilesResult<Self> {
        if let Some(name) = option {
            return Self::from_name(name).ok_or_else(|| {
                FilesError::InvalidPattern(format!(
                    "option \"format\" must be parquet or arrow (also: feather, ipc), got \"{name}\""
                ))
            });
        }
        let lower = path.to_ascii_lowercase();
        let suffix = lower.rsplit_once('.').map(|(_, s)| s).unwrap_or("");
        match suffix {
            "parquet" | "parq" | "pq" => Ok(FileFormat::Parquet),
            "arrow" | "feather" | "ipc" => Ok(FileFormat::ArrowIpc),
            _ => Err(FilesError::InvalidPattern(format!(
                "cannot tell the format of \"{path}\" from its suffix; set the table option format 'parquet' or 'arrow'"
            ))),
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "parquet" => Some(FileFormat::Parquet),
            "arrow" | "feather" | "ipc" => Some(FileFormat::ArrowIpc),
            _ => None,
        }
    }
}

enum Source {
    Parquet { file: File, meta: ArrowReaderMetadata },
    Ipc { batches: usize, bytes: u64 },
}

/// An opened file with its metadata read (Parquet footer / Arrow IPC footer).
pub struct CatalogFile {
    path: PathBuf,
    schema: SchemaRef,
    source: Source,
}

fn corrupt(path: &Path, message: impl ToString) -> FilesError {
    FilesError::Corrupt { path: path.display().to_string(), message: message.to_string() }
}

/// Runs a decoder call, turning a panic inside arrow/parquet (they do panic on some corrupt
/// inputs) into an error naming the file.
fn guarded<T>(path: &Path, f: impl FnOnce() -> FilesResult<T>) -> FilesResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("decoder panicked");
            Err(corrupt(path, msg))
        }
    }
}

/// Opens `path` for reading only if it is a regular file. The open itself does not block (a
/// FIFO or a device would make a plain open, or the first read, wait forever, uninterruptibly
/// for the backend); anything but a regular file is refused before a byte is read.
pub fn open_regular(path: &Path) -> FilesResult<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_error(path, &e))?;
    let meta = file.metadata().map_err(|e| io_error(path, &e))?;
    if !meta.file_type().is_file() {
        return Err(FilesError::Io {
            path: path.display().to_string(),
            message: "not a regular file".into(),
            not_found: false,
        });
    }
    Ok(file)
}

/// Checks the block table of an Arrow IPC file against the file's size before arrow reads it:
/// arrow allocates each block at the size the footer states, so a corrupt or hostile footer
/// (a 4 TB block) would make the allocation fail, which aborts the process instead of raising
/// an error.
fn check_ipc_blocks(path: &Path, file: &mut File) -> FilesResult<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata().map_err(|e| io_error(path, &e))?.len();
    if len < 18 {
        return Err(corrupt(path, "too short for an Arrow IPC file"));
    }
    let mut trailer = [0u8; 10];
    file.seek(SeekFrom::Start(len - 10)).and_then(|_| file.read_exact(&mut trailer)).map_err(|e| io_error(path, &e))?;
    let footer_len = arrow::ipc::reader::read_footer_length(trailer).map_err(|e| corrupt(path, e))? as u64;
    if footer_len > len - 10 {
        return Err(corrupt(path, format!("footer of {footer_len} bytes in a file of {len}")));
    }
    let mut footer = vec![0u8; footer_len as usize];
    file.seek(SeekFrom::Start(len - 10 - footer_len))
        .and_then(|_| file.read_exact(&mut footer))
        .map_err(|e| io_error(path, &e))?;
    let footer = arrow::ipc::root_as_footer(&footer).map_err(|e| corrupt(path, format!("unreadable footer: {e}")))?;
    let blocks = footer.recordBatches().into_iter().flatten().chain(footer.dictionaries().into_iter().flatten());
    for b in blocks {
        let end = (b.offset() as i128) + (b.metaDataLength() as i128) + (b.bodyLength() as i128);
        if b.offset() < 0 || b.metaDataLength() < 0 || b.bodyLength() < 0 || end > len as i128 {
            return Err(corrupt(
                path,
                format!(
                    "a block (offset {}, {} + {} bytes) lies outside the file of {len} bytes",
                    b.offset(),
                    b.metaDataLength(),
                    b.bodyLength()
                ),
            ));
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| io_error(path, &e))?;
    Ok(())
}

/// Checks the dictionary pages of the column chunks about to be read: parquet sizes a
/// dictionary by the value count its page header states (`ColumnValueDecoderImpl::set_dict`
/// resizes a vector to it), so a corrupt or hostile header (4 billion values in a page of a few
/// bytes) would make the reader allocate and zero tens of gigabytes, one uninterruptible call.
/// A page holds at least its values' minimal width each (4 bytes per length-prefixed string);
/// one that claims more values than that is refused before parquet decodes it. Costs one read
/// of each dictionary page (already in the OS cache when parquet reads it again).
fn check_dictionary_pages(
    path: &Path,
    file: &File,
    meta: &ArrowReaderMetadata,
    leaves: &[usize],
    row_groups: &[usize],
) -> FilesResult<()> {
    use parquet::basic::Type as Physical;
    use parquet::column::page::{Page, PageReader};
    use parquet::file::serialized_reader::SerializedPageReader;
    let file = std::sync::Arc::new(file.try_clone().map_err(|e| io_error(path, &e))?);
    let metadata = meta.metadata();
    for &g in row_groups {
        let rg = metadata.row_group(g);
        for &c in leaves {
            let chunk = rg.column(c);
            if chunk.dictionary_page_offset().is_none() {
                continue;
            }
            let mut pages = SerializedPageReader::new(file.clone(), chunk, rg.num_rows().max(0) as usize, None)
                .map_err(|e| corrupt(path, e))?;
            let Some(Page::DictionaryPage { buf, num_values, .. }) =
                pages.get_next_page().map_err(|e| corrupt(path, e))?
            else {
                continue;
            };
            let descr = chunk.column_descr();
            // Minimal encoded size of n values, in bits (booleans are bit-packed).
            let bits_each: u64 = match descr.physical_type() {
                Physical::BOOLEAN => 1,
                Physical::INT32 | Physical::FLOAT | Physical::BYTE_ARRAY => 32,
                Physical::INT64 | Physical::DOUBLE => 64,
                Physical::INT96 => 96,
                Physical::FIXED_LEN_BYTE_ARRAY => 8 * descr.type_length().max(1) as u64,
            };
            if u64::from(num_values) * bits_each > 8 * buf.len() as u64 {
                return Err(corrupt(
                    path,
                    format!(
                        "the dictionary page of column {} in row group {g} claims {num_values} values in {} bytes",
                        descr.path(),
                        buf.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl CatalogFile {
    pub fn open(path: &Path, format: FileFormat) -> FilesResult<Self> {
        let file = open_regular(path)?;
        guarded(path, || match format {
            FileFormat::Parquet => {
                let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| corrupt(path, e))?;
                Ok(CatalogFile {
                    path: path.to_path_buf(),
                    schema: meta.schema().clone(),
                    source: Source::Parquet { file, meta },
                })
            }
            FileFormat::ArrowIpc => {
                let mut file = file;
                let bytes = file.metadata().map_err(|e| io_error(path, &e))?.len();
                check_ipc_blocks(path, &mut file)?;
                let reader = IpcFileReader::try_new(file, None).map_err(|e| corrupt(path, e))?;
                Ok(CatalogFile {
                    path: path.to_path_buf(),
                    schema: reader.schema(),
                    source: Source::Ipc { batches: reader.num_batches(), bytes },
                })
            }
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Parquet row groups, or Arrow IPC record batches.
    pub fn num_row_groups(&self) -> usize {
        match &self.source {
            Source::Parquet { meta, .. } => meta.metadata().num_row_groups(),
            Source::Ipc { batches, .. } => *batches,
        }
    }

    /// Rows per row group when the metadata says (Parquet); Arrow IPC footers do not.
    pub fn row_group_rows(&self) -> Option<Vec<u64>> {
        match &self.source {
            Source::Parquet { meta, .. } => {
                Some(meta.metadata().row_groups().iter().map(|rg| rg.num_rows().max(0) as u64).collect())
            }
            Source::Ipc { .. } => None,
        }
    }

    /// Row count from the metadata, or for Arrow IPC an estimate from the file size.
    pub fn rows_estimate(&self) -> u64 {
        match &self.source {
            Source::Parquet { meta, .. } => meta.metadata().file_metadata().num_rows().max(0) as u64,
            Source::Ipc { bytes, .. } => bytes / (8 * self.schema.fields().len().max(1) as u64),
        }
    }

    /// Per-row-group statistics of root column `column` (empty stats when unknown).
    pub fn column_stats(&self, column: usize) -> Vec<ColumnStats> {
        let unknown = vec![ColumnStats::default(); self.num_row_groups()];
        let Source::Parquet { meta, .. } = &self.source else { return unknown };
        let field = self.schema.field(column);
        if !is_prunable_type(field.data_type()) {
            return unknown;
        }
        let stats = guarded(&self.path, || {
            let conv = StatisticsConverter::try_new(field.name(), &self.schema, meta.parquet_schema())
                .map_err(|e| corrupt(&self.path, e))?;
            let rgs = meta.metadata().row_groups();
            let mins = conv.row_group_mins(rgs.iter()).map_err(|e| corrupt(&self.path, e))?;
            let maxes = conv.row_group_maxes(rgs.iter()).map_err(|e| corrupt(&self.path, e))?;
            let nulls = conv.row_group_null_counts(rgs.iter()).map_err(|e| corrupt(&self.path, e))?;
            Ok((0..rgs.len())
                .map(|i| ColumnStats {
                    min: scalar_at(&mins, i),
                    max: scalar_at(&maxes, i),
                    null_count: nulls.is_valid(i).then(|| nulls.value(i)),
                    row_count: Some(rgs[i].num_rows().max(0) as u64),
                })
                .collect())
        });
        stats.unwrap_or(unknown)
    }

    /// Row groups that the statistics cannot rule out for every `(root column, condition)`
    /// (conditions AND-ed; pruning is conservative, see [`super::prune`]).
    pub fn kept_row_groups(&self, conditions: &[(usize, Condition)]) -> Vec<usize> {
        let mut keep = vec![true; self.num_row_groups()];
        for (column, condition) in conditions {
            let float = is_float_type(self.schema.field(*column).data_type());
            for (k, stats) in keep.iter_mut().zip(self.column_stats(*column)) {
                *k = *k && may_match(condition, &stats, float);
            }
        }
        (0..keep.len()).filter(|i| keep[*i]).collect()
    }

    /// Streams root columns `projection` (in that order) of row groups `row_groups`. The file
    /// can be read again (other row groups, another projection) without reading its footer
    /// again.
    pub fn read(&self, projection: &[usize], row_groups: Vec<usize>, batch_size: usize) -> FilesResult<BatchReader> {
        let path = self.path.clone();
        let inner: Box<dyn Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>> + Send> =
            guarded(&path, || match &self.source {
                Source::Parquet { file, meta } => {
                    // A duplicate of the open file: parquet seeks before every read it makes.
                    let file = file.try_clone().map_err(|e| io_error(&path, &e))?;
                    let mask = ProjectionMask::roots(meta.parquet_schema(), projection.iter().copied());
                    let leaves: Vec<usize> =
                        (0..meta.parquet_schema().num_columns()).filter(|&c| mask.leaf_included(c)).collect();
                    check_dictionary_pages(&path, &file, meta, &leaves, &row_groups)?;
                    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
                        .with_projection(mask)
                        .with_row_groups(row_groups)
                        .with_batch_size(batch_size)
                        .build()
                        .map_err(|e| corrupt(&path, e))?;
                    Ok(Box::new(reader) as Box<dyn Iterator<Item = _> + Send>)
                }
                Source::Ipc { .. } => {
                    // Reopened: the metadata pass consumed the first reader.
                    let mut file = open_regular(&path)?;
                    check_ipc_blocks(&path, &mut file)?;
                    let reader =
                        IpcFileReader::try_new(file, Some(projection.to_vec())).map_err(|e| corrupt(&path, e))?;
                    Ok(Box::new(reader) as Box<dyn Iterator<Item = _> + Send>)
                }
            })?;
        Ok(BatchReader { inner, path, projection: projection.to_vec() })
    }
}

/// Batches of one file. Columns come in the order of the projection passed to `read`
/// (the Parquet reader returns them in file order; they are reordered here).
pub struct BatchReader {
    inner: Box<dyn Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>> + Send>,
    path: PathBuf,
    projection: Vec<usize>,
}

impl BatchReader {
    pub fn next_batch(&mut self) -> FilesResult<Option<RecordBatch>> {
        let path = self.path.clone();
        let projection = &self.projection;
        let inner = &mut self.inner;
        guarded(&path, || match inner.next() {
            None => Ok(None),
            Some(Err(e)) => Err(corrupt(&path, e)),
            Some(Ok(batch)) => Ok(Some(in_projection_order(batch, projection))),
        })
    }
}

/// Reorders a batch whose columns are in ascending file order into `projection` order.
fn in_projection_order(batch: RecordBatch, projection: &[usize]) -> RecordBatch {
    if projection.windows(2).all(|w| w[0] < w[1]) {
        return batch;
    }
    let mut sorted: Vec<usize> = projection.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let order: Vec<usize> = projection.iter().map(|p| sorted.binary_search(p).expect("projected")).collect();
    batch.project(&order).expect("projection indices are in range")
}

/// Whether statistics of this type are turned into [`Scalar`]s for pruning.
pub fn is_prunable_type(t: &DataType) -> bool {
    use DataType::*;
    match t {
        Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Date32
        | Date64
        | Timestamp(_, _)
        | Utf8
        | LargeUtf8
        | Utf8View => true,
        Dictionary(_, v) => is_prunable_type(v),
        _ => false,
    }
}

pub fn is_float_type(t: &DataType) -> bool {
    match t {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => true,
        DataType::Dictionary(_, v) => is_float_type(v),
        _ => false,
    }
}

/// Microseconds since the Unix epoch of a timestamp value in `unit` (floor).
pub fn timestamp_micros(value: i64, unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => value.saturating_mul(1_000_000),
        TimeUnit::Millisecond => value.saturating_mul(1_000),
        TimeUnit::Microsecond => value,
        TimeUnit::Nanosecond => value.div_euclid(1_000),
    }
}

/// Element `i` of a statistics array as a [`Scalar`]; `None` for null or unsupported types.
pub fn scalar_at(array: &ArrayRef, i: usize) -> Option<Scalar> {
    use arrow::datatypes::*;
    if i >= array.len() || array.is_null(i) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Boolean => Scalar::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Scalar::Int(array.as_primitive::<Int8Type>().value(i) as i64),
        DataType::Int16 => Scalar::Int(array.as_primitive::<Int16Type>().value(i) as i64),
        DataType::Int32 => Scalar::Int(array.as_primitive::<Int32Type>().value(i) as i64),
        DataType::Int64 => Scalar::Int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Scalar::Int(array.as_primitive::<UInt8Type>().value(i) as i64),
        DataType::UInt16 => Scalar::Int(array.as_primitive::<UInt16Type>().value(i) as i64),
        DataType::UInt32 => Scalar::Int(array.as_primitive::<UInt32Type>().value(i) as i64),
        DataType::UInt64 => Scalar::Int(i64::try_from(array.as_primitive::<UInt64Type>().value(i)).ok()?),
        DataType::Float16 => Scalar::Float(array.as_primitive::<Float16Type>().value(i).to_f64()),
        DataType::Float32 => Scalar::Float(array.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => Scalar::Float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Date32 => Scalar::Date(array.as_primitive::<Date32Type>().value(i)),
        DataType::Date64 => Scalar::Date(array.as_primitive::<Date64Type>().value(i).div_euclid(86_400_000) as i32),
        DataType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(i),
            };
            Scalar::Timestamp(timestamp_micros(raw, unit))
        }
        DataType::Utf8 => Scalar::Str(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Scalar::Str(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Scalar::Str(array.as_string_view().value(i).to_string()),
        DataType::Dictionary(_, _) => {
            let plain = arrow::compute::cast(array, &DataType::Utf8).ok()?;
            return scalar_at(&plain, i);
        }
        _ => return None,
    })
}
