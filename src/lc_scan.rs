//! `skycat._drp_summary_scan(part regclass, bands text[], first_block int8, end_block int8)`:
//! the per-band light-curve summaries of a table whose rows are stored object by object (the
//! DRP's forced_source partitions, see docs/drp.md), read as a stream: one heap scan in
//! physical order, each object's rows finalised when the next object starts. No hash table of
//! every group, no sort: the cost of the scan plus `lc_stats`' finalisation.
//!
//! A call covers the objects whose first row lies in heap blocks `[first_block, end_block)`:
//! it skips the rows that continue an object from the block before, and reads past
//! `end_block` to finish its last object. Calls on adjacent block ranges therefore partition
//! the objects, and a parallel plan (a Parallel Append of such calls, see sql/drp.sql) gives
//! each process whole objects. An object whose rows are not adjacent (rows moved by an UPDATE
//! or a re-ingest into freed space) comes out more than once, each time with part of its rows:
//! the caller detects the repeated keys and summarises those objects again by the aggregate.
//!
//! Reads the columns object_id (int8), "dec" (float8), band (text), mjd, psf_flux and
//! psf_flux_err (float8). Returns (object_id, "dec", rows) and, per band, the 19 summary
//! columns in `drp_summary_columns('declare')` order (ndata int4, the others float8); the
//! caller gives them as the column definition list.

use crate::fastcall::v1_function;
use crate::gucs::LC_STATS_MAX_ROWS;
use pgrx::pg_sys::{self, Datum};
use pgrx::{ereport, FromDatum, PgLogLevel, PgSqlErrorCode};
use skycat_core::lightcurve::BandCurves;

const FUNCTION: &str = "skycat._drp_summary_scan";
/// Summary columns per band: the 18 float fields of lc_stats and ndata.
const PER_BAND: usize = 19;
/// Where ndata sits among a band's columns (after mean, mean_err, sigma, chi2).
const NDATA_AT: usize = 4;

fn fail(code: PgSqlErrorCode, msg: String) -> ! {
    ereport!(PgLogLevel::ERROR, code, format!("{FUNCTION}: {msg}"));
    unreachable!("ereport(ERROR) does not return")
}

/// The attribute index (0-based) of column `name` of type `typ`.
unsafe fn column(desc: pg_sys::TupleDesc, name: &str, typ: pg_sys::Oid) -> usize {
    let attrs = unsafe { (*desc).attrs.as_slice((*desc).natts as usize) };
    for (i, a) in attrs.iter().enumerate() {
        let attname = unsafe { std::ffi::CStr::from_ptr(a.attname.data.as_ptr()) };
        if !a.attisdropped && attname.to_bytes() == name.as_bytes() {
            if a.atttypid != typ {
                fail(PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH, format!("column {name} has the wrong type"));
            }
            return i;
        }
    }
    fail(PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, format!("the table has no column {name}"))
}

/// The band index of a text datum among `bands` (`Ok(None)`: another band). Reads the datum
/// in place; `Err(())` for one stored compressed or out of line (short band names never are),
/// which needs `pg_detoast_datum_packed`. Never panics and calls no PostgreSQL function: it
/// runs inside `Scan::fill`'s guarded batch.
unsafe fn band_in_place(d: Datum, bands: &[Vec<u8>]) -> Result<Option<usize>, ()> {
    let v = d.cast_mut_ptr::<pg_sys::varlena>();
    unsafe {
        if pgrx::varlena::varatt_is_1b_e(v) || pgrx::varlena::varatt_is_4b_c(v) {
            return Err(());
        }
        Ok(band_named(v, bands))
    }
}

/// The index among `bands` of the band held by the uncompressed, inline text `v`.
unsafe fn band_named(v: *const pg_sys::varlena, bands: &[Vec<u8>]) -> Option<usize> {
    let bytes = unsafe {
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, pgrx::varlena::varsize_any_exhdr(v))
    };
    bands.iter().position(|b| b.as_slice() == bytes)
}

struct Cols {
    object_id: usize,
    dec: usize,
    band: usize,
    mjd: usize,
    flux: usize,
    err: usize,
    /// How many attributes to deform.
    upto: i32,
}

/// One forced source as the summary reads it, copied out of the scan's slot.
#[derive(Clone, Copy, Default)]
struct Row {
    /// The heap block it is stored in.
    block: u32,
    /// (object_id, dec bits); None for a row without one.
    key: Option<(i64, u64)>,
    /// The band's index among the bands asked for; None for another band or a NULL band.
    band: Option<usize>,
    flux: f64,
    err: f64,
    mjd: f64,
}

/// Column `i` of the row in `slot` (deformed that far), None for NULL.
unsafe fn value(slot: *mut pg_sys::TupleTableSlot, i: usize) -> Option<Datum> {
    unsafe { (!*(*slot).tts_isnull.add(i)).then(|| *(*slot).tts_values.add(i)) }
}

/// The row in `slot` (deformed up to `c.upto`) but its band.
unsafe fn fields(slot: *mut pg_sys::TupleTableSlot, c: &Cols) -> Row {
    unsafe {
        let f = |i: usize| value(slot, i).map_or(f64::NAN, |d| f64::from_bits(d.value() as u64));
        let b = (*slot).tts_tid.ip_blkid;
        Row {
            block: ((b.bi_hi as u32) << 16) | b.bi_lo as u32,
            key: value(slot, c.object_id).zip(value(slot, c.dec)).map(|(o, d)| (o.value() as i64, d.value() as u64)),
            band: None,
            flux: f(c.flux),
            err: f(c.err),
            mjd: f(c.mjd),
        }
    }
}

/// The row in `slot` (deformed up to `c.upto`), or `Err(())` when its band needs detoasting.
/// Never panics and calls no PostgreSQL function (see `Scan::fill`).
unsafe fn row_in_place(slot: *mut pg_sys::TupleTableSlot, c: &Cols, bands: &[Vec<u8>]) -> Result<Row, ()> {
    unsafe {
        let mut row = fields(slot, c);
        if let Some(d) = value(slot, c.band) {
            row.band = band_in_place(d, bands)?;
        }
        Ok(row)
    }
}

/// How `Scan::fill` stopped.
#[derive(PartialEq)]
enum Fill {
    /// The buffer is full.
    Full,
    /// The scan is over.
    Ended,
    /// The slot holds a row the batch could not read (a band to detoast, attributes missing
    /// from an old tuple): read it with `Scan::current_row`.
    Slow,
}

/// A heap scan of blocks `[start, start + count)` (count `None`: to the end).
struct Scan {
    scan: pg_sys::TableScanDesc,
    slot: *mut pg_sys::TupleTableSlot,
}

impl Scan {
    unsafe fn new(rel: pg_sys::Relation, start: u32, count: Option<u32>, nblocks: u32) -> Scan {
        unsafe {
            // No synchronised scan (it would start anywhere) and no ring buffer (the stripe is
            // read again by the next steps).
            let flags = pg_sys::ScanOptions::SO_TYPE_SEQSCAN | pg_sys::ScanOptions::SO_ALLOW_PAGEMODE;
            let scan = pg_sys::heap_beginscan(
                rel,
                pg_sys::GetActiveSnapshot(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                flags,
            );
            pg_sys::heap_setscanlimits(scan, start, count.unwrap_or(nblocks - start));
            Scan { scan, slot: pg_sys::table_slot_create(rel, std::ptr::null_mut()) }
        }
    }

    /// The next row, one guarded call at a time (for the few rows `fill` leaves).
    unsafe fn next_row(&mut self, c: &Cols, bands: &[Vec<u8>]) -> Option<Row> {
        unsafe {
            if !pg_sys::heap_getnextslot(self.scan, pg_sys::ScanDirection::ForwardScanDirection, self.slot) {
                return None;
            }
            Some(self.current_row(c, bands))
        }
    }

    /// The row the slot holds, deformed and detoasted by PostgreSQL's own (guarded) functions.
    unsafe fn current_row(&mut self, c: &Cols, bands: &[Vec<u8>]) -> Row {
        unsafe {
            pg_sys::slot_getsomeattrs_int(self.slot, c.upto);
            row_in_place(self.slot, c, bands).unwrap_or_else(|()| {
                let v = pg_sys::pg_detoast_datum_packed((*(*self.slot).tts_values.add(c.band)).cast_mut_ptr());
                Row { band: band_named(v, bands), ..fields(self.slot, c) }
            })
        }
    }

    /// Read rows into `out` until it is full, the scan ends or a row needs PostgreSQL's help.
    ///
    /// Why not one `heap_getnextslot` per row through pgrx: every pgrx call into PostgreSQL
    /// sets up its own `sigsetjmp` and checks the thread, which was a fifth of the summary's
    /// time (two calls per row, 17M rows a stripe). Here one guarded call covers the batch and
    /// calls the table AM's and the slot's own function pointers inside it. The closure holds
    /// only plain data (no destructors, no panics), so an ERROR's longjmp out of PostgreSQL
    /// lands in the guard, as pgrx requires of the frames it skips.
    unsafe fn fill(&mut self, c: &Cols, bands: &[Vec<u8>], out: &mut [Row]) -> (usize, Fill) {
        let (scan, slot) = (self.scan, self.slot);
        unsafe {
            let getnext = (*(*(*scan).rs_rd).rd_tableam).scan_getnextslot;
            let deform = (*(*slot).tts_ops).getsomeattrs;
            let (Some(getnext), Some(deform)) = (getnext, deform) else {
                return (0, Fill::Slow);
            };
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                let mut n = 0;
                for row in out.iter_mut() {
                    if !getnext(scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
                        return (n, Fill::Ended);
                    }
                    if ((*slot).tts_nvalid as i32) < c.upto {
                        deform(slot, c.upto);
                    }
                    if ((*slot).tts_nvalid as i32) < c.upto {
                        return (n, Fill::Slow);
                    }
                    match row_in_place(slot, c, bands) {
                        Ok(r) => *row = r,
                        Err(()) => return (n, Fill::Slow),
                    }
                    n += 1;
                }
                (n, Fill::Full)
            })
        }
    }

    unsafe fn end(self) {
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            pg_sys::heap_endscan(self.scan);
        }
    }
}

/// Opens `relid` for reading, refusing what is not a heap table the user may read in full.
unsafe fn open(relid: pg_sys::Oid) -> pg_sys::Relation {
    unsafe {
        let rel = pg_sys::try_relation_open(relid, pg_sys::AccessShareLock as i32);
        if rel.is_null() {
            fail(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, format!("no relation with OID {}", relid.to_u32()));
        }
        let form = (*rel).rd_rel;
        if (*form).relkind as u8 != pg_sys::RELKIND_RELATION || (*form).relam != pg_sys::HEAP_TABLE_AM_OID {
            fail(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                "part must be a plain heap table (one partition, not the partitioned table)".into(),
            );
        }
        if pg_sys::pg_class_aclcheck(relid, pg_sys::GetUserId(), pg_sys::ACL_SELECT as pg_sys::AclMode)
            != pg_sys::AclResult::ACLCHECK_OK
        {
            fail(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied for the table".into());
        }
        // Row-level security would hide rows from the user: a direct heap scan cannot apply it.
        if pg_sys::check_enable_rls(relid, pg_sys::InvalidOid, false)
            == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
        {
            fail(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, "the table has row-level security enabled".into());
        }
        rel
    }
}

v1_function! {
    /// `_drp_summary_scan(part regclass, bands text[], first_block int8, end_block int8)
    /// RETURNS SETOF record`: see the module documentation.
    fn _drp_summary_scan(fcinfo) {
        let args = (*fcinfo).args.as_slice(4);
        if args.iter().any(|a| a.isnull) {
            fail(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "no argument may be NULL".into());
        }
        let relid = pg_sys::Oid::from(args[0].value.value() as u32);
        let bands: Vec<Vec<u8>> = Vec::<Option<String>>::from_datum(args[1].value, false)
            .unwrap_or_default()
            .into_iter()
            .map(|b| b.unwrap_or_default().into_bytes())
            .collect();
        let (first, end) = (args[2].value.value() as i64, args[3].value.value() as i64);
        if bands.is_empty() || bands.len() > 64 || bands.iter().any(|b| b.is_empty()) {
            fail(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "bands must be 1 to 64 non-empty names".into());
        }
        if first < 0 || end < first {
            fail(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("bad block range [{first}, {end})"));
        }

        pg_sys::InitMaterializedSRF(fcinfo, 0);
        let rsinfo = (*fcinfo).resultinfo.cast::<pg_sys::ReturnSetInfo>();
        let (store, out_desc) = ((*rsinfo).setResult, (*rsinfo).setDesc);
        let natts = 3 + PER_BAND * bands.len();
        let out_types: Vec<pg_sys::Oid> =
            (*out_desc).attrs.as_slice((*out_desc).natts as usize).iter().map(|a| a.atttypid).collect();
        let want = |i: usize| match i {
            0 | 2 => pg_sys::INT8OID,
            1 => pg_sys::FLOAT8OID,
            _ if (i - 3) % PER_BAND == NDATA_AT => pg_sys::INT4OID,
            _ => pg_sys::FLOAT8OID,
        };
        if out_types.len() != natts || out_types.iter().enumerate().any(|(i, t)| *t != want(i)) {
            fail(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("the column definition list must be (object_id int8, dec float8, rows int8) and {PER_BAND} columns per band as drp_summary_columns('declare') gives them ({natts} in all)"),
            );
        }

        let rel = open(relid);
        let nblocks = pg_sys::RelationGetNumberOfBlocksInFork(rel, pg_sys::ForkNumber::MAIN_FORKNUM);
        let desc = (*rel).rd_att;
        let mut c = Cols {
            object_id: column(desc, "object_id", pg_sys::INT8OID),
            dec: column(desc, "dec", pg_sys::FLOAT8OID),
            band: column(desc, "band", pg_sys::TEXTOID),
            mjd: column(desc, "mjd", pg_sys::FLOAT8OID),
            flux: column(desc, "psf_flux", pg_sys::FLOAT8OID),
            err: column(desc, "psf_flux_err", pg_sys::FLOAT8OID),
            upto: 0,
        };
        c.upto = 1 + [c.object_id, c.dec, c.band, c.mjd, c.flux, c.err].into_iter().max().unwrap_or(0) as i32;
        let (first, end) = (first.min(nblocks as i64) as u32, end.min(nblocks as i64) as u32);
        let max_rows = LC_STATS_MAX_ROWS.get().max(1) as usize;

        // The object in progress at the end of the block before ours belongs to the call
        // before: its key, from the last row of the nearest block before ours that has one.
        let mut before: Option<(i64, u64)> = None;
        for b in (0..first).rev() {
            let mut s = Scan::new(rel, b, Some(1), nblocks);
            while let Some(row) = s.next_row(&c, &bands) {
                before = row.key.or(before);
            }
            s.end();
            pgrx::check_for_interrupts!();
            if before.is_some() {
                break;
            }
        }

        let mut curves = BandCurves::new(bands.len());
        let mut current: Option<(i64, u64)> = None;
        let mut values = vec![Datum::from(0usize); natts];
        let mut nulls = vec![false; natts];
        let mut emit = |k: (i64, u64), curves: &mut BandCurves| {
            values[0] = Datum::from(k.0);
            values[1] = Datum::from(k.1 as usize);
            values[2] = Datum::from(curves.rows());
            for (b, (rows, st)) in curves.stats().enumerate() {
                let base = 3 + b * PER_BAND;
                // ndata: NULL when the object has no row in the band, else the used rows.
                values[base + NDATA_AT] = Datum::from(st.n as i32);
                nulls[base + NDATA_AT] = rows == 0;
                for (j, v) in st.float_fields().into_iter().enumerate() {
                    let at = base + if j < NDATA_AT { j } else { j + 1 };
                    values[at] = Datum::from(v.unwrap_or(0.0).to_bits() as usize);
                    nulls[at] = v.is_none();
                }
            }
            pg_sys::tuplestore_putvalues(store, out_desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            curves.clear();
        };

        let mut s = Scan::new(rel, first, None, nblocks);
        let mut leading = before.is_some();
        // Adds one row to the object in progress; false once past our objects.
        let mut take = |row: &Row, curves: &mut BandCurves| -> bool {
            let Some(k) = row.key else { return true };
            // The rows continuing the object of the call before.
            if leading {
                if Some(k) == before {
                    return true;
                }
                leading = false;
            }
            if current != Some(k) {
                // Past our blocks, only the object in progress is ours.
                if row.block >= end {
                    return false;
                }
                if let Some(done) = current {
                    emit(done, curves);
                }
                current = Some(k);
            }
            let Some(band) = row.band else { return true };
            if curves.push(band, row.flux, row.err, row.mjd) > max_rows {
                fail(
                    PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                    format!("object {} has more than {max_rows} rows in band {} (skycat.lc_stats_max_rows)", k.0, String::from_utf8_lossy(&bands[band])),
                );
            }
            true
        };
        let mut batch = [Row::default(); 512];
        'scan: loop {
            let (n, how) = s.fill(&c, &bands, &mut batch);
            for row in &batch[..n] {
                if !take(row, &mut curves) {
                    break 'scan;
                }
            }
            match how {
                Fill::Ended => break,
                Fill::Slow => {
                    let row = s.current_row(&c, &bands);
                    if !take(&row, &mut curves) {
                        break;
                    }
                }
                Fill::Full => {}
            }
            pgrx::check_for_interrupts!();
        }
        if let Some(done) = current {
            emit(done, &mut curves);
        }
        s.end();
        pg_sys::relation_close(rel, pg_sys::AccessShareLock as i32);
        Datum::from(0usize)
    }
    sql(
        "CREATE FUNCTION _drp_summary_scan(part regclass, bands text[], first_block int8, end_block int8)
         RETURNS SETOF record
         STABLE STRICT PARALLEL SAFE ROWS 50000 COST 100000000
         LANGUAGE c AS 'MODULE_PATHNAME', '_drp_summary_scan';
         COMMENT ON FUNCTION _drp_summary_scan(regclass, text[], int8, int8) IS
           'Internal (drp_summarize_forced_sources): per-band light-curve summaries of the objects whose first row lies in heap blocks [first_block, end_block) of a table stored object by object.';",
        name = "drp_summary_scan"
    );
}
