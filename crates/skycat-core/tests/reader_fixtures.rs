//! The file reader behind the `skycat_files` wrapper, against files a real producer wrote:
//! the Parquet (snappy and zstd, 300-row row groups) and Arrow IPC files pyarrow made in
//! tests/fixtures/parquet (tests/fixtures/gen_parquet.py), compared value by value with the
//! JSON that script wrote from the same Python lists (not read back through Arrow).

use std::path::PathBuf;

use serde_json::Value;
use skycat_core::files::arrow::array::{Array, ArrayRef, AsArray};
use skycat_core::files::arrow::compute::cast;
use skycat_core::files::arrow::datatypes::*;
use skycat_core::files::reader::{timestamp_micros, CatalogFile, FileFormat};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/parquet").join(rel)
}

/// Element `i` of an Arrow column as the JSON gen_parquet.py wrote for it: dates as days and
/// timestamps as microseconds since 1970, binary as hex, NaN as the string "NaN".
fn json_at(a: &ArrayRef, i: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    let float = |v: f64| if v.is_nan() { Value::from("NaN") } else { Value::from(v) };
    match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).into(),
        DataType::Float32 => float(a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => a.as_boolean().value(i).into(),
        DataType::Utf8 => a.as_string::<i32>().value(i).into(),
        DataType::Dictionary(_, _) => json_at(&cast(a, &DataType::Utf8).unwrap(), i),
        DataType::Binary => a.as_binary::<i32>().value(i).iter().map(|b| format!("{b:02x}")).collect::<String>().into(),
        DataType::Date32 => a.as_primitive::<Date32Type>().value(i).into(),
        DataType::Timestamp(unit, _) => {
            let raw = cast(a, &DataType::Int64).unwrap();
            timestamp_micros(raw.as_primitive::<Int64Type>().value(i), unit).into()
        }
        DataType::List(_) => {
            let v = a.as_list::<i32>().value(i);
            Value::Array((0..v.len()).map(|k| json_at(&v, k)).collect())
        }
        DataType::LargeList(_) => {
            let v = a.as_list::<i64>().value(i);
            Value::Array((0..v.len()).map(|k| json_at(&v, k)).collect())
        }
        t => panic!("unexpected column type {t}"),
    }
}

/// Reads every column of `file` and compares it, row by row, with `expected`.
fn check(file: &str, format: FileFormat, expected: &[Value], row_groups: usize) {
    let cat = CatalogFile::open(&fixture(file), format).unwrap();
    assert_eq!(cat.num_row_groups(), row_groups, "{file}");
    let names: Vec<String> = cat.schema().fields().iter().map(|f| f.name().clone()).collect();
    let projection: Vec<usize> = (0..names.len()).collect();
    let mut reader = cat.read(&projection, (0..row_groups).collect(), 128).unwrap();
    let mut row = 0;
    while let Some(batch) = reader.next_batch().unwrap() {
        for i in 0..batch.num_rows() {
            for (c, name) in names.iter().enumerate() {
                let got = json_at(batch.column(c), i);
                assert_eq!(got, expected[row][name], "{file} row {row} column {name}");
            }
            row += 1;
        }
    }
    assert_eq!(row, expected.len(), "{file}: rows read");
    // The file can be read again from its footer (a parallel scan does, row group by row group).
    let mut again = cat.read(&[0], vec![row_groups - 1], 1000).unwrap();
    let last = again.next_batch().unwrap().unwrap();
    let first_of_last = (row_groups - 1) * 300;
    assert_eq!(json_at(last.column(0), 0), expected[first_of_last.min(expected.len() - 1)]["diaSourceId"]);
}

#[test]
fn pyarrow_files_read_value_for_value() {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let parquet = expected["parquet"].as_array().unwrap();
    let (tract1, tract2): (Vec<Value>, Vec<Value>) = parquet.iter().cloned().partition(|r| r["tract"] == 1);
    // 1000 rows in 300-row row groups: 4 per file.
    check("tract=1/diaSource.parquet", FileFormat::Parquet, &tract1, 4);
    check("tract=2/diaSource.parquet", FileFormat::Parquet, &tract2, 4);
    // Arrow IPC: record batches play the row groups (pyarrow wrote one).
    let arrow = expected["arrow"].as_array().unwrap();
    let cat = CatalogFile::open(&fixture("diaSource_3.arrow"), FileFormat::ArrowIpc).unwrap();
    check("diaSource_3.arrow", FileFormat::ArrowIpc, arrow, cat.num_row_groups());
}
