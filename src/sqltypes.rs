//! Plumbing for skycat's own SQL types and composite results, used by [`scalar_fn!`] bodies.
//!
//! * `skycat.wcs` and `skycat.photo_calib` are variable-length types whose text form is JSON
//!   and whose stored form is the compact binary of the core type's `encode()`. The varlena
//!   data is 4 reserved bytes (keeping the f64 payload 8-byte aligned after a 4-byte header)
//!   followed by that payload. Per-row functions decode through a small per-backend cache
//!   keyed by the bytes, so a join that passes the same WCS for a whole detector decodes it
//!   once, and no JSON is parsed per row.
//! * [`Float8Row`] returns a composite of float8 columns (`sky_point`, `pixel_point`, OUT
//!   parameters) built with the result type's tuple descriptor, looked up once per call site
//!   and kept in `fn_extra`.
//!
//! [`scalar_fn!`]: crate::fastcall::scalar_fn

use std::cell::RefCell;
use std::ffi::CStr;
use std::rc::Rc;
use std::thread::LocalKey;

use pgrx::pg_sys::{self, Datum};
use pgrx::{ereport, PgLogLevel, PgSqlErrorCode};

use crate::fastcall::{FromArg, IntoRet};

/// Reserved bytes between the varlena header and the payload.
const PAD: usize = 4;
/// How many distinct decoded values each backend keeps per type.
const CACHE_ENTRIES: usize = 16;

/// The payload bytes of a skycat varlena Datum (detoasted if it had to be).
///
/// # Safety
/// `d` must be a non-NULL Datum of one of skycat's varlena types.
unsafe fn payload<'a>(d: Datum) -> &'a [u8] {
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        let data = pgrx::varlena::vardata_any(v) as *const u8;
        let len = pgrx::varlena::varsize_any_exhdr(v);
        if len < PAD {
            corrupt();
        }
        std::slice::from_raw_parts(data.add(PAD), len - PAD)
    }
}

fn corrupt() -> ! {
    ereport!(PgLogLevel::ERROR, PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, "skycat: corrupt wcs or photo_calib value");
    unreachable!()
}

/// A palloc'd varlena holding `bytes` as payload.
pub fn varlena_datum(bytes: &[u8]) -> Datum {
    let total = pg_sys::VARHDRSZ + PAD + bytes.len();
    // SAFETY: palloc0 returns `total` writable bytes or raises an ERROR.
    unsafe {
        let v = pg_sys::palloc0(total) as *mut pg_sys::varlena;
        pgrx::varlena::set_varsize_4b(v, total as i32);
        let data = (v as *mut u8).add(pg_sys::VARHDRSZ + PAD);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        Datum::from(v)
    }
}

type Cache<T> = RefCell<Vec<(Vec<u8>, Rc<T>)>>;

/// The decoded value of `bytes`, from the cache or decoded now (most recent first).
fn cached<T>(cache: &'static LocalKey<Cache<T>>, bytes: &[u8], decode: fn(&[u8]) -> Option<T>) -> Rc<T> {
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(i) = c.iter().position(|(k, _)| k.as_slice() == bytes) {
            if i != 0 {
                let e = c.remove(i);
                c.insert(0, e);
            }
            return c[0].1.clone();
        }
        let value = Rc::new(decode(bytes).unwrap_or_else(|| corrupt()));
        c.insert(0, (bytes.to_vec(), value.clone()));
        c.truncate(CACHE_ENTRIES);
        value
    })
}

thread_local! {
    static WCS_CACHE: Cache<skycat_core::wcs::Wcs> = const { RefCell::new(Vec::new()) };
    static PHOTO_CALIB_CACHE: Cache<skycat_core::photometry::PhotoCalib> = const { RefCell::new(Vec::new()) };
}

impl FromArg for Rc<skycat_core::wcs::Wcs> {
    #[inline]
    fn from_arg(d: Datum) -> Self {
        // SAFETY: the SQL declaration types this argument skycat.wcs and is STRICT.
        cached(&WCS_CACHE, unsafe { payload(d) }, skycat_core::wcs::Wcs::decode)
    }
}

impl FromArg for Rc<skycat_core::photometry::PhotoCalib> {
    #[inline]
    fn from_arg(d: Datum) -> Self {
        // SAFETY: the SQL declaration types this argument skycat.photo_calib and is STRICT.
        cached(&PHOTO_CALIB_CACHE, unsafe { payload(d) }, skycat_core::photometry::PhotoCalib::decode)
    }
}

/// A `cstring` argument (type input functions).
pub struct CStringArg(pub &'static str);

impl FromArg for CStringArg {
    fn from_arg(d: Datum) -> Self {
        // SAFETY: a cstring Datum is a NUL-terminated char pointer valid for the call.
        let s = unsafe { CStr::from_ptr(d.cast_mut_ptr::<std::ffi::c_char>()) };
        CStringArg(s.to_str().unwrap_or_else(|_| {
            ereport!(
                PgLogLevel::ERROR,
                PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
                "skycat: input is not UTF-8"
            );
            unreachable!()
        }))
    }
}

/// A `cstring` result (type output functions).
pub struct CStringRet(pub String);

impl IntoRet for CStringRet {
    fn into_ret(self, _fcinfo: pg_sys::FunctionCallInfo) -> Datum {
        let bytes = self.0.as_bytes();
        // SAFETY: palloc0 returns len + 1 zeroed bytes; the copy leaves the final NUL.
        unsafe {
            let p = pg_sys::palloc0(bytes.len() + 1) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
            Datum::from(p)
        }
    }
}

/// A skycat varlena result: the payload bytes.
pub struct VarlenaRet(pub Vec<u8>);

impl IntoRet for VarlenaRet {
    fn into_ret(self, _fcinfo: pg_sys::FunctionCallInfo) -> Datum {
        varlena_datum(&self.0)
    }
}

/// A composite result of N float8 columns, in the declared result type's column order.
pub struct Float8Row<const N: usize>(pub [f64; N]);

impl<const N: usize> IntoRet for Float8Row<N> {
    fn into_ret(self, fcinfo: pg_sys::FunctionCallInfo) -> Datum {
        Row(self.0.map(|v| Some(Datum::from(v.to_bits() as usize)))).into_ret(fcinfo)
    }
}

/// A float8 column value of a [`Row`]; NULL for None.
pub fn float8_datum(v: Option<f64>) -> Option<Datum> {
    v.map(|v| Datum::from(v.to_bits() as usize))
}

/// A composite result of N by-value columns (float8, int8), None for NULL, in the declared
/// result type's column order.
pub struct Row<const N: usize>(pub [Option<Datum>; N]);

impl<const N: usize> IntoRet for Row<N> {
    fn into_ret(self, fcinfo: pg_sys::FunctionCallInfo) -> Datum {
        // SAFETY: fcinfo and its flinfo are the live call frame; fn_extra is ours (no other
        // code uses it for these functions) and lives in fn_mcxt as long as the flinfo.
        unsafe {
            let flinfo = (*fcinfo).flinfo;
            let mut desc = (*flinfo).fn_extra as pg_sys::TupleDesc;
            if desc.is_null() {
                let old = pg_sys::MemoryContextSwitchTo((*flinfo).fn_mcxt);
                let mut found: pg_sys::TupleDesc = std::ptr::null_mut();
                let kind = pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut found);
                if kind != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || (*found).natts as usize != N {
                    pg_sys::MemoryContextSwitchTo(old);
                    ereport!(
                        PgLogLevel::ERROR,
                        PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                        format!("skycat: the function must return a composite of {N} columns")
                    );
                }
                desc = pg_sys::BlessTupleDesc(found);
                pg_sys::MemoryContextSwitchTo(old);
                (*flinfo).fn_extra = desc as *mut std::ffi::c_void;
            }
            let mut values = self.0.map(|v| v.unwrap_or(Datum::from(0usize)));
            let mut nulls = self.0.map(|v| v.is_none());
            let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
        }
    }
}

/// A composite argument of N float8 columns (`sky_point`, `sky_cone`): its values, or None
/// when a column is NULL (a value built as `ROW(NULL, 1)::skycat.sky_point`).
pub struct Float8Fields<const N: usize>(pub Option<[f64; N]>);

impl<const N: usize> FromArg for Float8Fields<N> {
    #[inline]
    fn from_arg(d: Datum) -> Self {
        // SAFETY: the SQL declaration types this argument as a composite of N float8 columns
        // (and the function is STRICT): a HeapTupleHeader whose data starts at t_hoff with
        // the columns 8-byte aligned and consecutive. A short-header copy is expanded by
        // pg_detoast_datum.
        unsafe {
            let t = pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as *const pg_sys::HeapTupleHeaderData;
            let natts = (*t).t_infomask2 as u32 & pg_sys::HEAP_NATTS_MASK;
            if natts as usize != N || (*t).t_infomask as u32 & pg_sys::HEAP_HASNULL != 0 {
                return Float8Fields(None);
            }
            let data = (t as *const u8).add((*t).t_hoff as usize);
            Float8Fields(Some(std::array::from_fn(|i| (data.add(8 * i) as *const f64).read_unaligned())))
        }
    }
}
