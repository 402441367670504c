//! The file wrapper end to end: files written by a real producer (pyarrow) read back exactly,
//! Arrow IPC, bad files as errors naming the file with the backend still working, a file
//! deleted mid-scan, and symlinks that would leave the root.

use postgres::Client;
use serde_json::Value;
use skycat_e2e::{fixture, ScratchDb};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A directory the server (running as another OS user) can read, removed at the end.
struct ServerDir(PathBuf);

impl ServerDir {
    fn new(name: &str) -> ServerDir {
        let p = std::env::temp_dir().join(format!("skycat_e2e_{name}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        ServerDir(p)
    }

    fn copy(&self, from: &Path, to: &str) -> PathBuf {
        let dest = self.0.join(to);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).unwrap();
            fs::set_permissions(parent, fs::Permissions::from_mode(0o777)).unwrap();
        }
        fs::copy(from, &dest).unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o644)).unwrap();
        dest
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn setup(db: &mut Client, root: &Path) {
    db.batch_execute(&format!(
        "CREATE EXTENSION IF NOT EXISTS skycat;
         CREATE SERVER files FOREIGN DATA WRAPPER skycat_files OPTIONS (root '{}');",
        root.display()
    ))
    .unwrap();
}

fn error_of(db: &mut Client, sql: &str) -> String {
    match db.batch_execute(sql) {
        Ok(()) => panic!("expected an error from: {sql}"),
        Err(e) => {
            let d = e.as_db_error().expect("a server error, not a lost connection");
            format!("{}: {}", d.code().code(), d.message())
        }
    }
}

fn opt_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Null => None,
        Value::String(s) if s == "NaN" => Some(f64::NAN),
        other => Some(other.as_f64().unwrap()),
    }
}

fn same_f64(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

const SELECT_ALL: &str = "SELECT tract, dia_source_id, ccd, flags, tiny, psf_flux, psf_flux_err::float8, band,
        night - date '1970-01-01', (extract(epoch FROM midpoint) * 1000000)::bigint,
        (extract(epoch FROM ingested) * 1000000)::bigint, is_dipole, encode(raw, 'hex'),
        shape::float8[], visits
   FROM {t} ORDER BY dia_source_id";

/// Compares every column of every row against the JSON written by the fixture script.
fn check_rows(db: &mut Client, table: &str, expected: &[Value]) {
    let rows = db.query(SELECT_ALL.replace("{t}", table).as_str(), &[]).unwrap();
    assert_eq!(rows.len(), expected.len(), "row count of {table}");
    for (r, e) in rows.iter().zip(expected) {
        let id: i64 = r.get(1);
        assert_eq!(id, e["diaSourceId"].as_i64().unwrap());
        let ctx = format!("{table} row {id}");
        assert_eq!(r.get::<_, Option<i64>>(0), e["tract"].as_i64(), "{ctx} tract");
        assert_eq!(r.get::<_, Option<i16>>(2).map(i64::from), e["ccd"].as_i64(), "{ctx} ccd");
        assert_eq!(r.get::<_, Option<i64>>(3), e["flags"].as_i64(), "{ctx} flags (uint32)");
        assert_eq!(r.get::<_, Option<i16>>(4).map(i64::from), e["tiny"].as_i64(), "{ctx} tiny (int8)");
        assert!(same_f64(r.get(5), opt_f64(&e["psfFlux"])), "{ctx} psf_flux");
        assert!(same_f64(r.get(6), opt_f64(&e["psfFluxErr"])), "{ctx} psf_flux_err (float32)");
        assert_eq!(r.get::<_, Option<String>>(7).as_deref(), e["band"].as_str(), "{ctx} band (dictionary)");
        assert_eq!(r.get::<_, Option<i32>>(8).map(i64::from), e["night"].as_i64(), "{ctx} night (date32)");
        assert_eq!(r.get::<_, Option<i64>>(9), e["midpoint"].as_i64(), "{ctx} midpoint (timestamp ns)");
        assert_eq!(r.get::<_, Option<i64>>(10), e["ingested"].as_i64(), "{ctx} ingested (timestamp ms UTC)");
        assert_eq!(r.get::<_, Option<bool>>(11), e["isDipole"].as_bool(), "{ctx} is_dipole");
        assert_eq!(r.get::<_, Option<String>>(12).as_deref(), e["raw"].as_str(), "{ctx} raw (binary)");
        let shape: Option<Vec<Option<f64>>> = r.get(13);
        let want: Option<Vec<Option<f64>>> = e["shape"].as_array().map(|a| a.iter().map(opt_f64).collect());
        assert_eq!(shape, want, "{ctx} shape (list<float32>)");
        let visits: Option<Vec<i64>> = r.get(14);
        let want: Option<Vec<i64>> = e["visits"].as_array().map(|a| a.iter().map(|v| v.as_i64().unwrap()).collect());
        assert_eq!(visits, want, "{ctx} visits (large_list<int64>)");
    }
}

fn expected() -> Value {
    serde_json::from_str(&fs::read_to_string(fixture("parquet/expected.json")).unwrap()).unwrap()
}

#[test]
fn pyarrow_files_read_back_exactly() {
    let dir = ServerDir::new("pyarrow");
    for t in [1, 2] {
        dir.copy(&fixture(&format!("parquet/tract={t}/diaSource.parquet")), &format!("tract={t}/diaSource.parquet"));
    }
    dir.copy(&fixture("parquet/diaSource_3.arrow"), "diaSource_3.arrow");
    let mut db = ScratchDb::new("files_pyarrow");
    let c = &mut db.client;
    setup(c, &dir.0);
    c.batch_execute(
        "IMPORT FOREIGN SCHEMA files FROM SERVER files INTO public
           OPTIONS (files 'tract=*/diaSource.parquet', table 'dia_source', snake_case 'true');
         CREATE FOREIGN TABLE dia_source_ipc (dia_source_id bigint, ccd int2, flags int8,
             tiny int2, psf_flux float8, psf_flux_err float4, band text, night date, midpoint timestamp,
             ingested timestamptz, is_dipole bool, raw bytea, shape float4[], visits int8[])
           SERVER files OPTIONS (files 'diaSource_3.arrow');
         CREATE VIEW dia_source_ipc_v AS SELECT NULL::bigint AS tract, * FROM dia_source_ipc;",
    )
    .unwrap();
    let exp = expected();
    check_rows(c, "dia_source", exp["parquet"].as_array().unwrap());
    // The Arrow IPC file has no tract= directory: its tract column is NULL.
    let ipc: Vec<Value> = exp["arrow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["tract"] = Value::Null;
            r
        })
        .collect();
    check_rows(c, "dia_source_ipc_v", &ipc);

    // Pruning on a file written by pyarrow (its own statistics): 300-row groups, ids sorted.
    let plan: Vec<String> = c
        .query(
            "EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM dia_source WHERE dia_source_id BETWEEN 2000100 AND 2000200",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let text = plan.join("\n");
    assert!(text.contains("Row Groups Read: 1 of 8 (skipped 7 by statistics)"), "{text}");
    let n: i64 = c
        .query_one("SELECT count(*) FROM dia_source WHERE dia_source_id BETWEEN 2000100 AND 2000200", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 101);
    // Dictionary-encoded strings prune on equality.
    let n: i64 = c.query_one("SELECT count(*) FROM dia_source WHERE band = 'r'", &[]).unwrap().get(0);
    let want = exp["parquet"].as_array().unwrap().iter().filter(|r| r["band"] == "r").count() as i64;
    assert_eq!(n, want);
}

#[test]
fn bad_files_are_errors_naming_the_file_and_the_backend_keeps_working() {
    let dir = ServerDir::new("bad");
    let good = dir.copy(&fixture("parquet/tract=1/diaSource.parquet"), "good/a.parquet");
    let bytes = fs::read(&good).unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.0.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::set_permissions(p.parent().unwrap(), fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    };
    write("truncated/a.parquet", &bytes[..bytes.len() * 2 / 3]);
    write("magic/a.parquet", b"PAR2 this is not a parquet file at all PAR2");
    let mut garbled = bytes.clone();
    for b in garbled.iter_mut().skip(64).take(bytes.len() / 2) {
        *b ^= 0x5A;
    }
    write("corrupt/a.parquet", &garbled);
    write("empty/a.parquet", b"");
    write("notarrow/a.arrow", b"ARROW1 but nothing after it");

    let mut db = ScratchDb::new("files_bad");
    let c = &mut db.client;
    setup(c, &dir.0);
    for (table, glob) in [
        ("t_truncated", "truncated/*.parquet"),
        ("t_magic", "magic/*.parquet"),
        ("t_corrupt", "corrupt/*.parquet"),
        ("t_empty", "empty/*.parquet"),
        ("t_notarrow", "notarrow/*.arrow"),
    ] {
        c.batch_execute(&format!(
            "CREATE FOREIGN TABLE {table} (dia_source_id bigint, psf_flux float8, band text) SERVER files OPTIONS (files '{glob}')"
        ))
        .unwrap();
        let err = error_of(c, &format!("SELECT sum(psf_flux), count(band) FROM {table}"));
        let file = glob.replace('*', "a");
        assert!(err.starts_with("XX001") && err.contains(&file), "{table}: {err}");
        // The same connection still answers.
        let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
    }
    // Schema drift: the second file lacks a declared column.
    c.batch_execute(&format!(
        "SELECT skycat.write_parquet('SELECT 1::bigint AS dia_source_id', '{}/drift/b.parquet');",
        dir.0.display()
    ))
    .unwrap();
    dir.copy(&good, "drift/a.parquet");
    c.batch_execute("CREATE FOREIGN TABLE t_drift (dia_source_id bigint, psf_flux float8) SERVER files OPTIONS (files 'drift/*.parquet')")
        .unwrap();
    let err = error_of(c, "SELECT count(psf_flux) FROM t_drift");
    assert!(err.starts_with("42804") && err.contains("drift/b.parquet") && err.contains("psf_flux"), "{err}");
    let n: i64 = c.query_one("SELECT count(*) FROM t_drift", &[]).unwrap().get(0);
    assert_eq!(n, 1001, "count(*) needs no column, so drift in psf_flux does not matter");
}

#[test]
fn a_file_deleted_mid_scan_is_an_error_naming_it() {
    let dir = ServerDir::new("deleted");
    dir.copy(&fixture("parquet/tract=1/diaSource.parquet"), "a/1.parquet");
    let second = dir.copy(&fixture("parquet/tract=2/diaSource.parquet"), "a/2.parquet");
    let mut db = ScratchDb::new("files_deleted");
    let c = &mut db.client;
    setup(c, &dir.0);
    c.batch_execute("CREATE FOREIGN TABLE t (dia_source_id bigint) SERVER files OPTIONS (files 'a/*.parquet')")
        .unwrap();
    c.batch_execute("BEGIN; DECLARE cur NO SCROLL CURSOR FOR SELECT dia_source_id FROM t;").unwrap();
    let first = c.query("FETCH 10 FROM cur", &[]).unwrap();
    assert_eq!(first.len(), 10);
    fs::remove_file(&second).unwrap();
    let err = error_of(c, "FETCH ALL FROM cur");
    assert!(err.starts_with("58P01") && err.contains("a/2.parquet"), "{err}");
    c.batch_execute("ROLLBACK").unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0);
    assert_eq!(n, 1000);
}

#[test]
fn symlinks_cannot_leave_the_root() {
    let dir = ServerDir::new("root");
    let outside = ServerDir::new("outside");
    let secret = outside.copy(&fixture("parquet/tract=1/diaSource.parquet"), "secret.parquet");
    dir.copy(&fixture("parquet/tract=2/diaSource.parquet"), "inside/ok.parquet");
    std::os::unix::fs::symlink(&secret, dir.0.join("inside/link.parquet")).unwrap();
    std::os::unix::fs::symlink(&outside.0, dir.0.join("linkdir")).unwrap();
    let mut db = ScratchDb::new("files_symlink");
    let c = &mut db.client;
    setup(c, &dir.0);
    c.batch_execute(
        "CREATE FOREIGN TABLE t_link (dia_source_id bigint) SERVER files OPTIONS (files 'inside/*.parquet');
         CREATE FOREIGN TABLE t_dir (dia_source_id bigint) SERVER files OPTIONS (files 'linkdir/*.parquet');
         CREATE FOREIGN TABLE t_ok (dia_source_id bigint) SERVER files OPTIONS (files 'inside/ok.parquet');",
    )
    .unwrap();
    for t in ["t_link", "t_dir"] {
        let err = error_of(c, &format!("SELECT count(*) FROM {t}"));
        assert!(err.starts_with("42501") && err.contains("outside the server's root"), "{t}: {err}");
    }
    let n: i64 = c.query_one("SELECT count(*) FROM t_ok", &[]).unwrap().get(0);
    assert_eq!(n, 1000);
}

/// Writes a one-column Parquet file of `array` with the crate's own writer, readable by the
/// server.
fn write_column(dir: &ServerDir, rel: &str, name: &str, array: skycat_core::files::arrow::array::ArrayRef) {
    use skycat_core::files::arrow::array::RecordBatch;
    use skycat_core::files::arrow::datatypes::{Field, Schema};
    use skycat_core::files::writer::ParquetFileWriter;
    use std::sync::Arc;
    let path = dir.0.join(rel);
    let schema = Arc::new(Schema::new(vec![Field::new(name, array.data_type().clone(), true)]));
    let mut w = ParquetFileWriter::create(&path, schema.clone(), 10).unwrap();
    w.write(&RecordBatch::try_new(schema, vec![array]).unwrap()).unwrap();
    w.finish().unwrap();
    for p in [path.parent().unwrap(), path.as_path()] {
        let mode = if p.is_dir() { 0o777 } else { 0o644 };
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[test]
fn values_postgres_cannot_store_are_errors_naming_file_row_group_and_column() {
    use skycat_core::files::arrow::array::{Date32Array, StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;
    let dir = ServerDir::new("reject");
    // 25 good rows, then the bad value at row 27 (row group 2 of 10-row groups, row 7 in it).
    let mut strings: Vec<Option<&str>> = (0..27).map(|_| Some("ok")).collect();
    strings.push(Some("a\0b"));
    write_column(&dir, "nul/a.parquet", "s", Arc::new(StringArray::from(strings)));
    let mut days: Vec<i32> = vec![19_000; 27];
    days.push(i32::MIN);
    write_column(&dir, "date/a.parquet", "d", Arc::new(Date32Array::from(days)));
    let mut micros: Vec<i64> = vec![1_700_000_000_000_000; 27];
    micros.push(i64::MIN);
    write_column(&dir, "ts/a.parquet", "t", Arc::new(TimestampMicrosecondArray::from(micros)));
    let long = "x".repeat(64);
    write_column(&dir, "name/a.parquet", "n", Arc::new(StringArray::from(vec![Some("fits"), Some(long.as_str())])));

    let mut db = ScratchDb::new("files_reject");
    let c = &mut db.client;
    setup(c, &dir.0);
    c.batch_execute(
        "CREATE FOREIGN TABLE t_nul (s text) SERVER files OPTIONS (files 'nul/*.parquet');
         CREATE FOREIGN TABLE t_date (d date) SERVER files OPTIONS (files 'date/*.parquet');
         CREATE FOREIGN TABLE t_ts (t timestamp) SERVER files OPTIONS (files 'ts/*.parquet');
         CREATE FOREIGN TABLE t_name (n name) SERVER files OPTIONS (files 'name/*.parquet');",
    )
    .unwrap();
    for (sql, file, column, what) in [
        ("SELECT s FROM t_nul", "nul/a.parquet", "s", "NUL byte"),
        ("SELECT d FROM t_date", "date/a.parquet", "d", "out of range for type date"),
        ("SELECT t FROM t_ts", "ts/a.parquet", "t", "out of range for type timestamp"),
        ("SELECT n FROM t_name", "name/a.parquet", "n", "longer than a name"),
    ] {
        let err = error_of(c, sql);
        assert!(err.starts_with("22000"), "{sql}: {err}");
        assert!(
            err.contains(file) && err.contains(&format!("column \"{column}\"")) && err.contains(what),
            "{sql}: {err}"
        );
        if file != "name/a.parquet" {
            assert!(err.contains("row group 2, row 7"), "{sql}: {err}");
        }
        // Nothing was stored and the session goes on.
        let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
    }
    // The good rows before the bad one are readable on their own (the scan is not poisoned).
    let n: i64 = c.query_one("SELECT count(*) FROM t_nul", &[]).unwrap().get(0);
    assert_eq!(n, 28, "count(*) reads no column");
}

/// Equal as JSON, numbers compared as numbers: Python prints 1.0 where PostgreSQL prints 1,
/// and a float4 widened to double differs from PostgreSQL's float4 text in the last digits.
fn same_json(g: &Value, w: &Value) -> bool {
    match (g, w) {
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_json(x, y)),
        _ => match (g.as_f64(), w.as_f64()) {
            (Some(a), Some(b)) => a == b || (a - b).abs() <= 1e-6 * b.abs(),
            _ => g == w,
        },
    }
}

/// The Python with pyarrow that `make test` sets up (`SKYCAT_PYTHON`).
fn pyarrow_python() -> String {
    std::env::var("SKYCAT_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pyenv/bin/python").into())
}

#[test]
fn write_parquet_files_read_back_in_pyarrow() {
    // What skycat writes, read by an independent implementation: every mapped type, NULLs,
    // NaN, negative and fractional timestamps, a name, arrays with NULL elements, a type
    // written as text, several row groups.
    let dir = ServerDir::new("pyarrow");
    let mut db = ScratchDb::new("files_pyarrow");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION IF NOT EXISTS skycat").unwrap();
    let path = dir.0.join("out/w.parquet");
    let query = "SELECT g::bigint AS id, g::int2 AS small, (g * 7)::int AS mid, (g % 3 = 0) AS flag,
                        CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN 'NaN'::float8 ELSE g / 7.0::float8 END AS x,
                        (g / 3.0)::float4 AS y, CASE WHEN g % 5 = 0 THEN NULL ELSE 'b' || g END AS label,
                        ('n' || g)::name AS nm, decode(lpad(to_hex(g), 4, '0'), 'hex') AS raw,
                        date '1969-12-30' + g AS d, timestamp '1969-12-31 23:59:59.999999' + g * interval '1 hour' AS ts,
                        timestamptz '2026-12-04 12:00:00.5+00' - g * interval '1 day' AS tstz,
                        CASE WHEN g % 4 = 0 THEN NULL ELSE ARRAY[g::float8, NULL, -g] END AS arr,
                        (g || ' days')::interval AS span
                   FROM generate_series(1, 250) g";
    let n: i64 =
        c.query_one("SELECT skycat.write_parquet($1, $2, 100)", &[&query, &path.to_str().unwrap()]).unwrap().get(0);
    assert_eq!(n, 250);
    let out = std::process::Command::new(pyarrow_python())
        .arg(fixture("read_parquet.py"))
        .arg(&path)
        .output()
        .expect("run pyarrow (make test sets up target/pyenv)");
    assert!(out.status.success(), "pyarrow: {}", String::from_utf8_lossy(&out.stderr));
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["row_groups"], 3, "250 rows in row groups of 100");
    let schema = &read["schema"];
    for (col, t) in [
        ("id", "int64"),
        ("small", "int16"),
        ("mid", "int32"),
        ("flag", "bool"),
        ("x", "double"),
        ("y", "float"),
        ("label", "string"),
        ("nm", "string"),
        ("raw", "binary"),
        ("d", "date32[day]"),
        ("ts", "timestamp[us]"),
        ("tstz", "timestamp[us, tz=UTC]"),
        ("arr", "list<item: double>"),
        ("span", "string"),
    ] {
        assert_eq!(schema[col], t, "type of {col}");
    }
    // The same values computed by PostgreSQL, encoded the way read_parquet.py encodes them.
    let expected = c
        .query(
            &format!(
                "SELECT json_build_object(
                   'id', id, 'small', small, 'mid', mid, 'flag', flag,
                   'x', CASE WHEN x = 'NaN' THEN to_json('NaN'::text) ELSE to_json(x) END, 'y', y, 'label', label,
                   'nm', nm, 'raw', encode(raw, 'hex'), 'd', d - date '1970-01-01',
                   'ts', (extract(epoch FROM ts - timestamp '1970-01-01') * 1000000)::bigint,
                   'tstz', (extract(epoch FROM tstz) * 1000000)::bigint,
                   'arr', arr, 'span', span::text)::text FROM ({query}) q ORDER BY id"
            ),
            &[],
        )
        .unwrap();
    let rows = read["rows"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for (got, want) in rows.iter().zip(&expected) {
        let want: Value = serde_json::from_str(&want.get::<_, String>(0)).unwrap();
        for (col, w) in want.as_object().unwrap() {
            let g = &got[col];
            assert!(same_json(g, w), "row {} column {col}: pyarrow read {g}, PostgreSQL has {w}", want["id"]);
        }
    }
}
