//! Per-row SQL functions called through PostgreSQL's bare V1 interface.
//!
//! pgrx's generic `#[pg_extern]` wrapper costs ~70 ns per call (memory-context switch,
//! argument iterator, return-ABI dispatch), measured side by side in
//! docs/benchmarks/geometry.md — more than the kernels it wraps (20-100 ns). The functions a
//! query calls once per row with by-value scalar arguments (float8, int4, int8) are declared
//! with [`scalar_fn!`] instead: the arguments are read straight from `fcinfo`, errors still
//! go through `#[pg_guard]` (a Rust panic or ereport becomes an SQL ERROR), and the SQL
//! declaration (names, defaults, STRICT, IMMUTABLE, PARALLEL SAFE) is written out in full.
//! STRICT guarantees no NULL argument ever reaches the body.

use pgrx::pg_sys::Datum;

/// An argument read from its Datum (by-value scalars, or the decoded form of a skycat type).
pub trait FromArg {
    fn from_arg(d: Datum) -> Self;
}

impl FromArg for f64 {
    #[inline]
    fn from_arg(d: Datum) -> Self {
        // float8 is passed by value on 64-bit platforms (USE_FLOAT8_BYVAL).
        f64::from_bits(d.value() as u64)
    }
}

impl FromArg for i32 {
    #[inline]
    fn from_arg(d: Datum) -> Self {
        d.value() as i32
    }
}

impl FromArg for i64 {
    #[inline]
    fn from_arg(d: Datum) -> Self {
        d.value() as i64
    }
}

/// A result turned into a Datum. `fcinfo` is the call's, for results that set `isnull` or
/// build a composite of the declared result type (see [`crate::sqltypes`]).
pub trait IntoRet {
    fn into_ret(self, fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Datum;
}

impl IntoRet for Option<f64> {
    #[inline]
    fn into_ret(self, fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Datum {
        match self {
            Some(v) => v.into_ret(fcinfo),
            None => {
                // SAFETY: fcinfo is the live call frame PostgreSQL passed in.
                unsafe { (*fcinfo).isnull = true };
                Datum::from(0usize)
            }
        }
    }
}

impl IntoRet for f64 {
    #[inline]
    fn into_ret(self, _fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Datum {
        Datum::from(self.to_bits() as usize)
    }
}

impl IntoRet for i32 {
    #[inline]
    fn into_ret(self, _fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Datum {
        Datum::from(self as isize as usize)
    }
}

impl IntoRet for i64 {
    #[inline]
    fn into_ret(self, _fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Datum {
        Datum::from(self as usize)
    }
}

impl IntoRet for bool {
    #[inline]
    fn into_ret(self, _fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Datum {
        Datum::from(self as usize)
    }
}

/// Declares a bare V1 C function `$name` (with its `pg_finfo_$name` record) whose body sees
/// `fcinfo` and runs under `pg_guard` (a Rust panic or a PostgreSQL ERROR becomes an SQL
/// ERROR): the one way skycat declares a C function outside `#[pg_extern]`. Optionally ships
/// `sql(...)` (the arguments of `pgrx::extension_sql!`) in the extension script.
///
/// With `fast { ... } guarded { ... }`, a function whose common case calls nothing in
/// PostgreSQL (aggregate transitions): the fast block returns `Some(result)` for it (and must
/// change nothing when it returns `None`) and runs without the guard's setjmp (~10% of a
/// 50M-row GROUP BY); every other call runs the guarded body.
macro_rules! v1_function {
    (
        $(#[$meta:meta])*
        fn $name:ident($fcinfo:ident) $(fast $fast:block guarded)? $body:block
        $(sql($($sql:tt)*);)?
    ) => {
        $(#[$meta])*
        pub mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[export_name = concat!("pg_finfo_", stringify!($name))]
            pub extern "C" fn finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
                const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1
            }

            #[inline(always)]
            #[allow(unused_unsafe)]
            unsafe fn body($fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
                // SAFETY: PostgreSQL calls this with a valid fcinfo for the declared signature.
                unsafe { $body }
            }

            #[pgrx::pg_guard]
            unsafe extern "C-unwind" fn guarded(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
                unsafe { body(fcinfo) }
            }

            #[export_name = stringify!($name)]
            pub unsafe extern "C-unwind" fn call(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
                $(
                    #[inline(always)]
                    unsafe fn fast($fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Option<pgrx::pg_sys::Datum> {
                        unsafe { $fast }
                    }
                    // No panic may unwind into PostgreSQL: one here falls back to the guarded path.
                    if let Ok(Some(d)) = std::panic::catch_unwind(|| unsafe { fast(fcinfo) }) {
                        return d;
                    }
                )?
                unsafe { guarded(fcinfo) }
            }

            $(pgrx::extension_sql!($($sql)*);)?
        }
    };
}

pub(crate) use v1_function;

/// A per-row SQL function over by-value scalar arguments: declares `fn $name(args) -> ret
/// { body }` as the V1 C function `$name` ([`v1_function!`]) reading its arguments straight
/// from `fcinfo`, and ships `sql` (the full `CREATE FUNCTION ... LANGUAGE c AS
/// 'MODULE_PATHNAME', '$name'`) in the extension script.
macro_rules! scalar_fn {
    (
        $(#[$meta:meta])*
        sql_name = $sql_name:literal;
        $(requires = [$($req:literal),* $(,)?];)?
        sql = $sql:literal;
        fn $name:ident($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty $body:block
    ) => {
        $crate::fastcall::v1_function! {
            $(#[$meta])*
            fn $name(fcinfo) {
                #[inline(always)]
                fn typed($($arg: $ty),*) -> $ret $body
                let args = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
                #[allow(unused_mut, unused_variables)]
                let mut args = args.iter();
                $(
                    let $arg = <$ty as $crate::fastcall::FromArg>::from_arg(
                        args.next().expect("the SQL declaration has this argument").value,
                    );
                )*
                $crate::fastcall::IntoRet::into_ret(typed($($arg),*), fcinfo)
            }
            sql($sql, name = $sql_name $(, requires = [$($req),*])?);
        }
    };
}

pub(crate) use scalar_fn;
