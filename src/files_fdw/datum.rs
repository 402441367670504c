//! Conversions between PostgreSQL Datums and Arrow values for the file wrapper and
//! `write_parquet`.

use pgrx::pg_sys::{self, Datum, Oid};
use skycat_core::files::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeListArray, GenericListArray, PrimitiveArray,
};
use skycat_core::files::arrow::datatypes::*;
use skycat_core::files::prune::Scalar;
use skycat_core::files::reader::timestamp_micros;
use skycat_core::files::types::{
    arrow_date_from_pg, arrow_timestamp_from_pg, check_text, pg_date_from_arrow, pg_timestamp_from_arrow, PgKind,
    NAME_MAX_BYTES,
};
use std::ffi::c_char;

/// The kind of a PostgreSQL type the wrapper handles (varchar/bpchar read as text).
pub(crate) fn kind_of(typoid: Oid) -> Option<PgKind> {
    Some(match typoid {
        pg_sys::BOOLOID => PgKind::Bool,
        pg_sys::INT2OID => PgKind::Int2,
        pg_sys::INT4OID => PgKind::Int4,
        pg_sys::INT8OID => PgKind::Int8,
        pg_sys::FLOAT4OID => PgKind::Float4,
        pg_sys::FLOAT8OID => PgKind::Float8,
        pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => PgKind::Text,
        pg_sys::NAMEOID => PgKind::Name,
        pg_sys::BYTEAOID => PgKind::Bytea,
        pg_sys::DATEOID => PgKind::Date,
        pg_sys::TIMESTAMPOID => PgKind::Timestamp,
        pg_sys::TIMESTAMPTZOID => PgKind::TimestampTz,
        pg_sys::BOOLARRAYOID => PgKind::Array(Box::new(PgKind::Bool)),
        pg_sys::INT2ARRAYOID => PgKind::Array(Box::new(PgKind::Int2)),
        pg_sys::INT4ARRAYOID => PgKind::Array(Box::new(PgKind::Int4)),
        pg_sys::INT8ARRAYOID => PgKind::Array(Box::new(PgKind::Int8)),
        pg_sys::FLOAT4ARRAYOID => PgKind::Array(Box::new(PgKind::Float4)),
        pg_sys::FLOAT8ARRAYOID => PgKind::Array(Box::new(PgKind::Float8)),
        pg_sys::TEXTARRAYOID => PgKind::Array(Box::new(PgKind::Text)),
        _ => return None,
    })
}

/// The element type oid of an array kind (what `construct_md_array` needs).
pub(crate) fn element_oid(kind: &PgKind) -> Oid {
    match kind {
        PgKind::Bool => pg_sys::BOOLOID,
        PgKind::Int2 => pg_sys::INT2OID,
        PgKind::Int4 => pg_sys::INT4OID,
        PgKind::Int8 => pg_sys::INT8OID,
        PgKind::Float4 => pg_sys::FLOAT4OID,
        PgKind::Float8 => pg_sys::FLOAT8OID,
        PgKind::Text => pg_sys::TEXTOID,
        PgKind::Name => pg_sys::NAMEOID,
        PgKind::Bytea => pg_sys::BYTEAOID,
        PgKind::Date => pg_sys::DATEOID,
        PgKind::Timestamp => pg_sys::TIMESTAMPOID,
        PgKind::TimestampTz => pg_sys::TIMESTAMPTZOID,
        PgKind::Array(_) => pg_sys::InvalidOid,
    }
}

/// A query constant, parameter or partition value as a pruning [`Scalar`]; `None` when the
/// type does not prune.
pub(crate) unsafe fn scalar_from_datum(d: Datum, typoid: Oid) -> Option<Scalar> {
    Some(match typoid {
        pg_sys::BOOLOID => Scalar::Bool(d.value() != 0),
        pg_sys::INT2OID => Scalar::Int(d.value() as i16 as i64),
        pg_sys::INT4OID => Scalar::Int(d.value() as i32 as i64),
        pg_sys::INT8OID => Scalar::Int(d.value() as i64),
        pg_sys::FLOAT4OID => Scalar::Float(f32::from_bits(d.value() as u32) as f64),
        pg_sys::FLOAT8OID => Scalar::Float(f64::from_bits(d.value() as u64)),
        // ±infinity and values beyond the file side's range compare beyond every value: do
        // not prune on them.
        pg_sys::DATEOID => Scalar::Date(arrow_date_from_pg(d.value() as i32)?),
        pg_sys::TIMESTAMPOID | pg_sys::TIMESTAMPTZOID => Scalar::Timestamp(arrow_timestamp_from_pg(d.value() as i64)?),
        pg_sys::TEXTOID | pg_sys::VARCHAROID => {
            let text = d.cast_mut_ptr::<pg_sys::varlena>();
            let s = pgrx::text_to_rust_str_unchecked(pg_sys::pg_detoast_datum_packed(text));
            Scalar::Str(s.to_string())
        }
        _ => return None,
    })
}

/// An Arrow column of one batch, downcast once so reading a row is a plain index.
pub(crate) enum TypedColumn {
    Bool(BooleanArray),
    I64(PrimitiveArray<Int64Type>),
    U64(PrimitiveArray<UInt64Type>),
    F32(PrimitiveArray<Float32Type>),
    F64(PrimitiveArray<Float64Type>),
    F16(PrimitiveArray<Float16Type>),
    Utf8(ArrayRef),
    Binary(ArrayRef),
    Date(PrimitiveArray<Date32Type>),
    /// Microseconds since 1970 (converted from the file's unit).
    Micros(PrimitiveArray<Int64Type>),
    List(ArrayRef),
    I32(PrimitiveArray<Int32Type>),
    /// Text, name or bytea values already laid out as Datums in one palloc'd arena (see
    /// `varlena_arena`, `name_arena`), so reading a row needs no PostgreSQL call.
    Varlena(Vec<Datum>, ArrayRef),
}

impl TypedColumn {
    /// Prepares `array` for reading into `kind`: text, name and bytea become Datums in the
    /// current memory context (the batch context) right away. `Err((row, message))` for a
    /// string PostgreSQL cannot store as it is (a NUL byte; a name over 63 bytes).
    pub(crate) unsafe fn for_kind(array: &ArrayRef, kind: &PgKind) -> Result<TypedColumn, (usize, String)> {
        let col = TypedColumn::new(array);
        Ok(match (&col, kind) {
            (TypedColumn::Utf8(a), PgKind::Text | PgKind::Name) => {
                if let Some(bad) = (0..a.len())
                    .filter(|&i| a.is_valid(i))
                    .find_map(|i| check_text(string_at(a, i).as_bytes(), kind).err().map(|m| (i, m)))
                {
                    return Err(bad);
                }
                let datums = if *kind == PgKind::Name {
                    name_arena(a, |i| string_at(a, i).as_bytes())
                } else {
                    varlena_arena(a, |i| string_at(a, i).as_bytes())
                };
                TypedColumn::Varlena(datums, a.clone())
            }
            (TypedColumn::Binary(a), PgKind::Bytea) => {
                TypedColumn::Varlena(varlena_arena(a, |i| binary_at(a, i)), a.clone())
            }
            _ => col,
        })
    }

    /// Whether reading a row can call into PostgreSQL (arrays) or fail (uint64 overflow).
    pub(crate) fn needs_guard(&self) -> bool {
        matches!(self, TypedColumn::List(_) | TypedColumn::U64(_) | TypedColumn::Utf8(_) | TypedColumn::Binary(_))
    }

    /// Prepares `array` for reading (which `can_hold` has accepted for the target kind).
    pub(crate) fn new(array: &ArrayRef) -> TypedColumn {
        use skycat_core::files::arrow::compute::cast;
        let t = array.data_type().clone();
        match &t {
            DataType::Dictionary(_, v) => {
                let plain = cast(array, v).expect("dictionary values cast to their own type");
                TypedColumn::new(&plain)
            }
            DataType::Boolean => TypedColumn::Bool(array.as_boolean().clone()),
            DataType::Int32 => TypedColumn::I32(array.as_primitive::<Int32Type>().clone()),
            DataType::Int8
            | DataType::Int16
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => {
                let wide = cast(array, &DataType::Int64).expect("integers widen to int64");
                TypedColumn::I64(wide.as_primitive::<Int64Type>().clone())
            }
            DataType::UInt64 => TypedColumn::U64(array.as_primitive::<UInt64Type>().clone()),
            DataType::Float16 => TypedColumn::F16(array.as_primitive::<Float16Type>().clone()),
            DataType::Float32 => TypedColumn::F32(array.as_primitive::<Float32Type>().clone()),
            DataType::Float64 => TypedColumn::F64(array.as_primitive::<Float64Type>().clone()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => TypedColumn::Utf8(array.clone()),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                TypedColumn::Binary(array.clone())
            }
            DataType::Date32 => TypedColumn::Date(array.as_primitive::<Date32Type>().clone()),
            DataType::Date64 => {
                let days = cast(array, &DataType::Date32).expect("date64 casts to date32");
                TypedColumn::Date(days.as_primitive::<Date32Type>().clone())
            }
            DataType::Timestamp(unit, _) => {
                let raw = cast(array, &DataType::Int64).expect("timestamps are int64");
                let micros: PrimitiveArray<Int64Type> =
                    raw.as_primitive::<Int64Type>().unary(|v| timestamp_micros(v, unit));
                TypedColumn::Micros(micros)
            }
            _ => TypedColumn::List(array.clone()),
        }
    }

    fn nulls_array(&self) -> &dyn Array {
        match self {
            TypedColumn::Bool(a) => a,
            TypedColumn::I64(a) => a,
            TypedColumn::U64(a) => a,
            TypedColumn::F32(a) => a,
            TypedColumn::F64(a) => a,
            TypedColumn::F16(a) => a,
            TypedColumn::Utf8(a) | TypedColumn::Binary(a) | TypedColumn::List(a) | TypedColumn::Varlena(_, a) => {
                a.as_ref()
            }
            TypedColumn::Date(a) => a,
            TypedColumn::Micros(a) => a,
            TypedColumn::I32(a) => a,
        }
    }

    /// Whether any value of this batch column is NULL (lets the row loop skip the check).
    pub(crate) fn has_nulls(&self) -> bool {
        self.nulls_array().null_count() > 0
    }

    pub(crate) fn is_null(&self, i: usize) -> bool {
        self.nulls_array().is_null(i)
    }

    /// Row `i` (not NULL) as a Datum of `kind`, allocating varlenas in the current memory
    /// context. `Err` carries a message for values the kind cannot hold (uint64 > int8, dates
    /// and timestamps beyond PostgreSQL's range, strings with a NUL byte).
    #[inline]
    pub(crate) unsafe fn datum(&self, i: usize, kind: &PgKind) -> Result<Datum, String> {
        Ok(match self {
            TypedColumn::F64(a) => float_datum(a.value(i), kind),
            TypedColumn::F32(a) => float_datum(a.value(i) as f64, kind),
            TypedColumn::F16(a) => float_datum(a.value(i).to_f64(), kind),
            TypedColumn::I32(a) => int_datum(a.value(i) as i64, kind),
            TypedColumn::I64(a) => int_datum(a.value(i), kind),
            TypedColumn::U64(a) => {
                let v = a.value(i);
                let v = i64::try_from(v).map_err(|_| format!("value {v} is out of range for type bigint"))?;
                int_datum(v, kind)
            }
            TypedColumn::Bool(a) => Datum::from(a.value(i)),
            TypedColumn::Date(a) => Datum::from(pg_date_from_arrow(a.value(i))?),
            TypedColumn::Micros(a) => Datum::from(pg_timestamp_from_arrow(a.value(i))?),
            TypedColumn::Varlena(v, _) => v[i],
            TypedColumn::Utf8(a) => {
                let bytes = string_at(a, i).as_bytes();
                check_text(bytes, kind)?;
                bytes_datum(bytes)
            }
            TypedColumn::Binary(a) => bytes_datum(binary_at(a, i)),
            TypedColumn::List(a) => {
                let PgKind::Array(elem) = kind else { unreachable!("lists only go into arrays") };
                array_datum(list_at(a, i), elem)?
            }
        })
    }
}

#[inline]
fn float_datum(v: f64, kind: &PgKind) -> Datum {
    match kind {
        PgKind::Float4 => Datum::from((v as f32).to_bits()),
        _ => Datum::from(v.to_bits()),
    }
}

#[inline]
fn int_datum(v: i64, kind: &PgKind) -> Datum {
    match kind {
        PgKind::Int2 => Datum::from(v as i16),
        PgKind::Int4 => Datum::from(v as i32),
        PgKind::Int8 => Datum::from(v),
        PgKind::Float4 => Datum::from((v as f32).to_bits()),
        _ => Datum::from((v as f64).to_bits()),
    }
}

unsafe fn bytes_datum(b: &[u8]) -> Datum {
    Datum::from(pg_sys::cstring_to_text_with_len(b.as_ptr() as *const c_char, b.len() as i32))
}

/// Lays out every non-NULL value of a batch column as a 4-byte-header varlena in one
/// allocation of the current memory context: one PostgreSQL call per batch instead of one
/// `cstring_to_text_with_len` per row.
unsafe fn varlena_arena<'a>(a: &'a ArrayRef, value: impl Fn(usize) -> &'a [u8]) -> Vec<Datum> {
    const HDR: usize = 4; // VARHDRSZ
    let n = a.len();
    let padded = |len: usize| (len + HDR + 3) & !3; // int4 alignment of the next varlena
    let total: usize = (0..n).filter(|i| a.is_valid(*i)).map(|i| padded(value(i).len())).sum();
    let base = pg_sys::MemoryContextAllocHuge(pg_sys::CurrentMemoryContext, total.max(HDR)) as *mut u8;
    let mut out = Vec::with_capacity(n);
    let mut at = 0usize;
    for i in 0..n {
        if a.is_null(i) {
            out.push(Datum::from(0usize));
            continue;
        }
        let bytes = value(i);
        let p = base.add(at);
        // SET_VARSIZE on a little-endian machine: the length (with header) shifted left 2.
        (p as *mut u32).write(((bytes.len() + HDR) as u32) << 2);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(HDR), bytes.len());
        out.push(Datum::from(p));
        at += padded(bytes.len());
    }
    out
}

/// Lays out every non-NULL value of a batch column as a `name` (NAMEDATALEN bytes, NUL
/// padded; values already checked to fit) in one allocation of the current memory context.
unsafe fn name_arena<'a>(a: &'a ArrayRef, value: impl Fn(usize) -> &'a [u8]) -> Vec<Datum> {
    const NAMEDATALEN: usize = NAME_MAX_BYTES + 1;
    let n = a.len();
    let base = pg_sys::MemoryContextAllocZeroAligned(pg_sys::CurrentMemoryContext, (n * NAMEDATALEN).max(1)) as *mut u8;
    (0..n)
        .map(|i| {
            if a.is_null(i) {
                return Datum::from(0usize);
            }
            let bytes = value(i);
            let p = base.add(i * NAMEDATALEN);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len().min(NAME_MAX_BYTES));
            Datum::from(p)
        })
        .collect()
}

fn string_at(a: &ArrayRef, i: usize) -> &str {
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i),
        _ => a.as_string_view().value(i),
    }
}

fn binary_at(a: &ArrayRef, i: usize) -> &[u8] {
    match a.data_type() {
        DataType::Binary => a.as_binary::<i32>().value(i),
        DataType::LargeBinary => a.as_binary::<i64>().value(i),
        DataType::FixedSizeBinary(_) => a.as_fixed_size_binary().value(i),
        _ => a.as_binary_view().value(i),
    }
}

fn list_at(a: &ArrayRef, i: usize) -> ArrayRef {
    match a.data_type() {
        DataType::List(_) => a.as_any().downcast_ref::<GenericListArray<i32>>().expect("list").value(i),
        DataType::LargeList(_) => a.as_any().downcast_ref::<GenericListArray<i64>>().expect("large list").value(i),
        _ => a.as_any().downcast_ref::<FixedSizeListArray>().expect("fixed-size list").value(i),
    }
}

/// (typlen, typbyval, typalign) of a type, as the array functions want them.
unsafe fn len_byval_align(typoid: Oid) -> (i16, bool, c_char) {
    let (mut typlen, mut typbyval, mut typalign) = (0i16, false, 0 as c_char);
    pg_sys::get_typlenbyvalalign(typoid, &mut typlen, &mut typbyval, &mut typalign);
    (typlen, typbyval, typalign)
}

/// The elements of an array Datum whose elements have type `elem` (NULL elements as `None`).
pub(crate) unsafe fn array_elements(d: Datum, elem: Oid) -> Vec<Option<Datum>> {
    let arr = pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as *mut pg_sys::ArrayType;
    let (typlen, byval, align) = len_byval_align(elem);
    let mut elems: *mut Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut n = 0i32;
    pg_sys::deconstruct_array(arr, elem, typlen as i32, byval, align, &mut elems, &mut nulls, &mut n);
    (0..n as usize).map(|i| (!*nulls.add(i)).then(|| *elems.add(i))).collect()
}

/// A one-dimensional PostgreSQL array of `elem` from the Arrow values `values`.
unsafe fn array_datum(values: ArrayRef, elem: &PgKind) -> Result<Datum, String> {
    let col = TypedColumn::new(&values);
    let n = values.len();
    let mut datums = Vec::with_capacity(n);
    let mut nulls = Vec::with_capacity(n);
    for j in 0..n {
        if col.is_null(j) {
            datums.push(Datum::from(0usize));
            nulls.push(true);
        } else {
            datums.push(col.datum(j, elem)?);
            nulls.push(false);
        }
    }
    let elmtype = element_oid(elem);
    let (typlen, typbyval, typalign) = len_byval_align(elmtype);
    let mut dims = [n as i32];
    let mut lbs = [1i32];
    let arr = pg_sys::construct_md_array(
        datums.as_mut_ptr(),
        nulls.as_mut_ptr(),
        1,
        dims.as_mut_ptr(),
        lbs.as_mut_ptr(),
        elmtype,
        typlen as i32,
        typbyval,
        typalign,
    );
    Ok(Datum::from(arr))
}
