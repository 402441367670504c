//! The type mapping between PostgreSQL columns and Arrow/Parquet columns, in one table used
//! by the scan (can a declared column hold this file column?), by `IMPORT FOREIGN SCHEMA`
//! (which PostgreSQL type to declare) and by `write_parquet` (which Arrow type to write).

use arrow::datatypes::{DataType, Field, TimeUnit};
use std::sync::Arc;

/// The PostgreSQL column types the file wrapper reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    /// PostgreSQL's `name`: a string of at most [`NAME_MAX_BYTES`] bytes, stored fixed-size.
    Name,
    Bytea,
    Date,
    Timestamp,
    TimestampTz,
    /// A one-dimensional array of a scalar kind.
    Array(Box<PgKind>),
}

impl PgKind {
    pub fn sql_name(&self) -> String {
        match self {
            PgKind::Bool => "boolean".into(),
            PgKind::Int2 => "smallint".into(),
            PgKind::Int4 => "integer".into(),
            PgKind::Int8 => "bigint".into(),
            PgKind::Float4 => "real".into(),
            PgKind::Float8 => "double precision".into(),
            PgKind::Text => "text".into(),
            PgKind::Name => "name".into(),
            PgKind::Bytea => "bytea".into(),
            PgKind::Date => "date".into(),
            PgKind::Timestamp => "timestamp without time zone".into(),
            PgKind::TimestampTz => "timestamp with time zone".into(),
            PgKind::Array(e) => format!("{}[]", e.sql_name()),
        }
    }
}

/// The value type of a dictionary, or the type itself.
pub fn plain_type(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, v) => plain_type(v),
        other => other,
    }
}

/// The element type of a list type.
pub fn list_element(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
            Some(f.data_type())
        }
        _ => None,
    }
}

/// Whether every value of Arrow type `t` fits a PostgreSQL column of kind `kind` without
/// loss (integers widen, floats widen, integers up to 32 bits into float8; unsigned 64-bit
/// integers go into bigint and error on values above its range).
pub fn can_hold(kind: &PgKind, t: &DataType) -> bool {
    use DataType as D;
    let t = plain_type(t);
    match kind {
        PgKind::Bool => matches!(t, D::Boolean),
        PgKind::Int2 => matches!(t, D::Int8 | D::Int16 | D::UInt8),
        PgKind::Int4 => matches!(t, D::Int8 | D::Int16 | D::Int32 | D::UInt8 | D::UInt16),
        PgKind::Int8 => {
            matches!(t, D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64)
        }
        PgKind::Float4 => matches!(t, D::Float16 | D::Float32 | D::Int8 | D::Int16 | D::UInt8),
        PgKind::Float8 => matches!(
            t,
            D::Float16 | D::Float32 | D::Float64 | D::Int8 | D::Int16 | D::Int32 | D::UInt8 | D::UInt16 | D::UInt32
        ),
        PgKind::Text | PgKind::Name => matches!(t, D::Utf8 | D::LargeUtf8 | D::Utf8View),
        PgKind::Bytea => matches!(t, D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_)),
        PgKind::Date => matches!(t, D::Date32 | D::Date64),
        PgKind::Timestamp => matches!(t, D::Timestamp(_, None)),
        PgKind::TimestampTz => matches!(t, D::Timestamp(_, Some(_))),
        PgKind::Array(e) => match list_element(t) {
            Some(inner) if !matches!(**e, PgKind::Array(_)) => can_hold(e, inner),
            _ => false,
        },
    }
}

/// The PostgreSQL type `IMPORT FOREIGN SCHEMA` declares for an Arrow type; `None` when the
/// wrapper cannot read it (structs, maps, decimals, nested lists...).
pub fn pg_kind_for(t: &DataType) -> Option<PgKind> {
    use DataType as D;
    Some(match plain_type(t) {
        D::Boolean => PgKind::Bool,
        D::Int8 | D::Int16 | D::UInt8 => PgKind::Int2,
        D::Int32 | D::UInt16 => PgKind::Int4,
        D::Int64 | D::UInt32 | D::UInt64 => PgKind::Int8,
        D::Float16 | D::Float32 => PgKind::Float4,
        D::Float64 => PgKind::Float8,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => PgKind::Text,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => PgKind::Bytea,
        D::Date32 | D::Date64 => PgKind::Date,
        D::Timestamp(_, None) => PgKind::Timestamp,
        D::Timestamp(_, Some(_)) => PgKind::TimestampTz,
        other => match list_element(other).and_then(pg_kind_for) {
            Some(PgKind::Array(_)) | None => return None,
            Some(e) => PgKind::Array(Box::new(e)),
        },
    })
}

/// The Arrow type `write_parquet` writes for a PostgreSQL kind (and that reads back into it).
pub fn arrow_type_for(kind: &PgKind) -> DataType {
    match kind {
        PgKind::Bool => DataType::Boolean,
        PgKind::Int2 => DataType::Int16,
        PgKind::Int4 => DataType::Int32,
        PgKind::Int8 => DataType::Int64,
        PgKind::Float4 => DataType::Float32,
        PgKind::Float8 => DataType::Float64,
        PgKind::Text | PgKind::Name => DataType::Utf8,
        PgKind::Bytea => DataType::Binary,
        PgKind::Date => DataType::Date32,
        PgKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        PgKind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        PgKind::Array(e) => DataType::List(Arc::new(Field::new("item", arrow_type_for(e), true))),
    }
}

/// Longest `name` value in bytes (PostgreSQL's NAMEDATALEN - 1).
pub const NAME_MAX_BYTES: usize = 63;

/// Days between 1970-01-01 (Arrow) and 2000-01-01 (PostgreSQL).
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds between 1970-01-01 and 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// PostgreSQL's date range in days since 2000-01-01: Julian day 0 (4714-11-24 BC) up to, not
/// including, Julian day 2147483494 (the end of 5874897 AD); beyond it a value would wrap or
/// read as +-infinity.
const PG_DATE_MIN: i64 = -2_451_545;
const PG_DATE_END: i64 = 2_147_483_494 - 2_451_545;
/// PostgreSQL's timestamp range in microseconds since 2000-01-01: 4714-11-24 BC up to, not
/// including, 294277-01-01.
const PG_TIMESTAMP_MIN: i64 = -211_813_488_000_000_000;
const PG_TIMESTAMP_END: i64 = 9_223_371_331_200_000_000;

/// An Arrow date (days since 1970) as a PostgreSQL date (days since 2000), or a message
/// when PostgreSQL's date range cannot hold it.
pub fn pg_date_from_arrow(days: i32) -> Result<i32, String> {
    let d = days as i64 - PG_EPOCH_DAYS as i64;
    if (PG_DATE_MIN..PG_DATE_END).contains(&d) {
        Ok(d as i32)
    } else {
        Err(format!("date {days} days from 1970-01-01 is out of range for type date"))
    }
}

/// An Arrow timestamp (microseconds since 1970) as a PostgreSQL timestamp (microseconds since
/// 2000), or a message when PostgreSQL's timestamp range cannot hold it.
pub fn pg_timestamp_from_arrow(micros: i64) -> Result<i64, String> {
    match micros.checked_sub(PG_EPOCH_MICROS) {
        Some(t) if (PG_TIMESTAMP_MIN..PG_TIMESTAMP_END).contains(&t) => Ok(t),
        _ => Err(format!("timestamp {micros} microseconds from 1970-01-01 is out of range for type timestamp")),
    }
}

/// A PostgreSQL date (days since 2000) as days since 1970, for comparing with file
/// statistics; `None` when it does not fit (infinite or extreme dates never prune).
pub fn arrow_date_from_pg(days: i32) -> Option<i32> {
    days.checked_add(PG_EPOCH_DAYS).filter(|_| days != i32::MIN && days != i32::MAX)
}

/// A PostgreSQL timestamp (microseconds since 2000) as microseconds since 1970; `None` when it
/// does not fit (infinite or extreme timestamps never prune).
pub fn arrow_timestamp_from_pg(micros: i64) -> Option<i64> {
    micros.checked_add(PG_EPOCH_MICROS).filter(|_| micros != i64::MIN && micros != i64::MAX)
}

/// Checks a string for a PostgreSQL text value: no NUL byte (PostgreSQL strings end at one,
/// so the stored value would differ from the file's). `name` values are also limited to
/// [`NAME_MAX_BYTES`].
pub fn check_text(bytes: &[u8], kind: &PgKind) -> Result<(), String> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(format!("string value has a NUL byte at offset {at}, which PostgreSQL text cannot hold"));
    }
    if *kind == PgKind::Name && bytes.len() > NAME_MAX_BYTES {
        return Err(format!("string value of {} bytes is longer than a name ({NAME_MAX_BYTES} bytes)", bytes.len()));
    }
    Ok(())
}

/// Matches a declared column name to a file's column names: exact, then ignoring case, then
/// ignoring case and underscores (so `psf_flux` finds LSST's `psfFlux`). Returns the index.
pub fn match_column(declared: &str, names: &[&str]) -> Option<usize> {
    let squash = |s: &str| s.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect::<String>();
    names
        .iter()
        .position(|n| *n == declared)
        .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(declared)))
        .or_else(|| {
            let d = squash(declared);
            names.iter().position(|n| squash(n) == d)
        })
}

/// `psfFlux` → `psf_flux`, `coord_ra` stays, `HTMID20` → `htmid20` (for `IMPORT FOREIGN SCHEMA
/// ... OPTIONS (snake_case 'true')`).
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_imported_type_reads_back_and_writes_back() {
        use DataType as D;
        let types = [
            D::Boolean,
            D::Int8,
            D::Int16,
            D::Int32,
            D::Int64,
            D::UInt8,
            D::UInt16,
            D::UInt32,
            D::UInt64,
            D::Float16,
            D::Float32,
            D::Float64,
            D::Utf8,
            D::LargeUtf8,
            D::Binary,
            D::Date32,
            D::Date64,
            D::Timestamp(TimeUnit::Nanosecond, None),
            D::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            D::Dictionary(Box::new(D::Int32), Box::new(D::Utf8)),
            D::List(Arc::new(Field::new("item", D::Float32, true))),
            D::LargeList(Arc::new(Field::new("item", D::Int64, true))),
        ];
        for t in types {
            let kind = pg_kind_for(&t).unwrap_or_else(|| panic!("{t:?} imports"));
            assert!(can_hold(&kind, &t), "{kind:?} holds {t:?}");
            assert!(can_hold(&kind, &arrow_type_for(&kind)), "{kind:?} round trips");
        }
        assert!(pg_kind_for(&D::Decimal128(10, 2)).is_none());
    }

    #[test]
    fn narrowing_is_refused() {
        assert!(!can_hold(&PgKind::Int4, &DataType::Int64));
        assert!(!can_hold(&PgKind::Float4, &DataType::Float64));
        assert!(!can_hold(&PgKind::Float8, &DataType::Int64));
        assert!(!can_hold(&PgKind::Text, &DataType::Int32));
        assert!(!can_hold(&PgKind::Timestamp, &DataType::Timestamp(TimeUnit::Second, Some("UTC".into()))));
        assert!(can_hold(&PgKind::Int8, &DataType::Int32));
    }

    #[test]
    fn values_postgres_would_reject_are_refused() {
        // The ends of PostgreSQL's ranges, from its documentation: 4713 BC to 5874897 AD for
        // dates, 4713 BC to 294276 AD for timestamps.
        assert_eq!(pg_date_from_arrow(0), Ok(-10_957));
        assert!(pg_date_from_arrow(i32::MIN).is_err());
        assert!(pg_date_from_arrow(i32::MAX).is_err());
        assert_eq!(pg_date_from_arrow(-2_451_545 + 10_957), Ok(-2_451_545));
        assert!(pg_date_from_arrow(-2_451_546 + 10_957).is_err());
        assert_eq!(pg_timestamp_from_arrow(PG_EPOCH_MICROS), Ok(0));
        // i64::MIN used to wrap to year 294247; the first valid microsecond is 4714-11-24 BC.
        assert!(pg_timestamp_from_arrow(i64::MIN).is_err());
        let first = PG_TIMESTAMP_MIN + PG_EPOCH_MICROS;
        assert_eq!(pg_timestamp_from_arrow(first), Ok(PG_TIMESTAMP_MIN));
        assert!(pg_timestamp_from_arrow(first - 1).is_err());
        // The largest Arrow value (year 294247) is inside PostgreSQL's range (to 294276).
        assert_eq!(pg_timestamp_from_arrow(i64::MAX), Ok(i64::MAX - PG_EPOCH_MICROS));
        // Query constants near the end of the range do not overflow (they used to wrap and
        // prune every row group away).
        assert_eq!(arrow_timestamp_from_pg(9_223_371_331_199_999_999), None);
        assert_eq!(arrow_timestamp_from_pg(0), Some(PG_EPOCH_MICROS));
        assert_eq!(arrow_timestamp_from_pg(i64::MAX), None);
        assert_eq!(arrow_date_from_pg(i32::MAX - 5), None);
        assert_eq!(arrow_date_from_pg(i32::MAX), None);
        assert!(check_text(b"a\0b", &PgKind::Text).is_err());
        assert!(check_text(b"ab", &PgKind::Text).is_ok());
        assert!(check_text(&[b'x'; 63], &PgKind::Name).is_ok());
        assert!(check_text(&[b'x'; 64], &PgKind::Name).is_err());
    }

    #[test]
    fn names_match_like_a_user_expects() {
        let names = ["diaObjectId", "psfFlux", "psfFlux_err", "ra"];
        assert_eq!(match_column("ra", &names), Some(3));
        assert_eq!(match_column("psf_flux", &names), Some(1));
        assert_eq!(match_column("psf_flux_err", &names), Some(2));
        assert_eq!(match_column("diaobjectid", &names), Some(0));
        assert_eq!(match_column("dec", &names), None);
        assert_eq!(snake_case("psfFlux"), "psf_flux");
        assert_eq!(snake_case("diaObjectId"), "dia_object_id");
        assert_eq!(snake_case("HTMID20"), "htmid20");
        assert_eq!(snake_case("psfFluxErr"), "psf_flux_err");
        assert_eq!(snake_case("coord_ra"), "coord_ra");
        assert_eq!(snake_case("extendedness"), "extendedness");
    }
}
