//! Skipping files and row groups whose statistics prove that no row can match.
//!
//! A [`Predicate`] is one pushed-down comparison `column <op> constant` (or `IS [NOT] NULL`);
//! a query's predicates are AND-ed, so a row group can be skipped when any one of them cannot
//! match. Pruning only has to be conservative: PostgreSQL re-checks every qual on every row.
//!
//! Two PostgreSQL semantics matter:
//! - NaN sorts above every number in PostgreSQL, while Parquet writers leave NaN out of
//!   min/max. So `x > c` / `x >= c` on a float column never prunes (a NaN row would match);
//!   `<`, `<=`, `=` and `IN` are safe because NaN fails them (NaN constants never prune).
//! - Text comparisons use the collation, Parquet statistics are byte-ordered: strings prune
//!   only for `=` and `IN`.

use std::cmp::Ordering;

/// A value from a statistic, a partition value or a query constant, normalised so values of
/// one column compare: integers as i64, dates as days and timestamps as microseconds since
/// 1970-01-01.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Date(i32),
    Timestamp(i64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CompareOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn from_sql(name: &str) -> Option<Self> {
        Some(match name {
            "=" => CompareOp::Eq,
            "<" => CompareOp::Lt,
            "<=" => CompareOp::Le,
            ">" => CompareOp::Gt,
            ">=" => CompareOp::Ge,
            _ => return None,
        })
    }

    /// The operator with its operands swapped (`c < x` is `x > c`).
    pub fn commuted(self) -> Self {
        match self {
            CompareOp::Eq => CompareOp::Eq,
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// One pushed-down condition on one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare(CompareOp, Scalar),
    /// `x = ANY(array)` / `x IN (...)`; NULL elements are dropped by the caller.
    In(Vec<Scalar>),
    IsNull,
    IsNotNull,
}

/// What the statistics say about one column in one file or row group. `None` means unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnStats {
    pub min: Option<Scalar>,
    pub max: Option<Scalar>,
    pub null_count: Option<u64>,
    pub row_count: Option<u64>,
}

impl ColumnStats {
    /// Statistics of a constant column (a hive partition value): every row holds `value`.
    pub fn constant(value: Option<Scalar>, rows: Option<u64>) -> Self {
        match value {
            Some(v) => ColumnStats { min: Some(v.clone()), max: Some(v), null_count: Some(0), row_count: rows },
            None => ColumnStats { min: None, max: None, null_count: rows, row_count: rows },
        }
    }

    fn all_null(&self) -> bool {
        matches!((self.null_count, self.row_count), (Some(n), Some(r)) if n == r && r > 0)
    }
}

/// Orders two scalars of compatible kinds; `None` when they do not compare (different kinds,
/// NaN) — callers then keep the row group.
pub fn compare(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    use Scalar::*;
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    match (a, b) {
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (Date(x), Date(y)) => Some(x.cmp(y)),
        (Timestamp(x), Timestamp(y)) => Some(x.cmp(y)),
        (Date(x), Timestamp(y)) => Some((*x as i64 * MICROS_PER_DAY).cmp(y)),
        (Timestamp(x), Date(y)) => Some(x.cmp(&(*y as i64 * MICROS_PER_DAY))),
        (Str(x), Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

fn is_float(s: &Scalar) -> bool {
    matches!(s, Scalar::Float(_))
}

/// Whether a row with the given statistics could satisfy `condition`. `float_column` says
/// whether the column's values are floating point (so NaN may hide above `max`).
pub fn may_match(condition: &Condition, stats: &ColumnStats, float_column: bool) -> bool {
    match condition {
        Condition::IsNull => stats.null_count != Some(0),
        Condition::IsNotNull => !stats.all_null(),
        // A comparison is false for NULL: an all-NULL group cannot match.
        _ if stats.all_null() => false,
        Condition::In(values) => values.iter().any(|v| value_may_match(CompareOp::Eq, v, stats, float_column)),
        Condition::Compare(op, v) => value_may_match(*op, v, stats, float_column),
    }
}

fn value_may_match(op: CompareOp, value: &Scalar, stats: &ColumnStats, float_column: bool) -> bool {
    if let Scalar::Float(f) = value {
        if f.is_nan() {
            return true;
        }
    }
    if matches!(value, Scalar::Str(_)) && op != CompareOp::Eq {
        return true;
    }
    let below_min = |ok: fn(Ordering) -> bool| match &stats.min {
        Some(min) => compare(min, value).map(ok).unwrap_or(true),
        None => true,
    };
    let above_max = |ok: fn(Ordering) -> bool| match &stats.max {
        Some(max) => compare(max, value).map(ok).unwrap_or(true),
        None => true,
    };
    // NaN rows sit above max for PostgreSQL, so only an exact-kind integer column may
    // be pruned by max for `>`/`>=`.
    let nan_possible = float_column || stats.max.as_ref().is_some_and(is_float);
    match op {
        CompareOp::Eq => below_min(|o| o != Ordering::Greater) && above_max(|o| o != Ordering::Less),
        CompareOp::Lt => below_min(|o| o == Ordering::Less),
        CompareOp::Le => below_min(|o| o != Ordering::Greater),
        CompareOp::Gt => nan_possible || above_max(|o| o == Ordering::Greater),
        CompareOp::Ge => nan_possible || above_max(|o| o != Ordering::Less),
    }
}

/// Whether a row holding `value` (None = NULL) satisfies `condition` with PostgreSQL
/// semantics. The brute-force reference for [`may_match`] in tests, and the exact test used
/// for partition values.
pub fn row_matches(condition: &Condition, value: Option<&Scalar>) -> bool {
    let pg_cmp = |a: &Scalar, b: &Scalar| -> Option<Ordering> {
        match (a, b) {
            // PostgreSQL: NaN equals NaN and sorts above every other number.
            (Scalar::Float(x), Scalar::Float(y)) if x.is_nan() || y.is_nan() => Some(x.is_nan().cmp(&y.is_nan())),
            (Scalar::Float(x), Scalar::Int(_)) if x.is_nan() => Some(Ordering::Greater),
            (Scalar::Int(_), Scalar::Float(y)) if y.is_nan() => Some(Ordering::Less),
            _ => compare(a, b),
        }
    };
    match (condition, value) {
        (Condition::IsNull, v) => v.is_none(),
        (Condition::IsNotNull, v) => v.is_some(),
        (_, None) => false,
        (Condition::In(values), Some(x)) => values.iter().any(|v| pg_cmp(x, v) == Some(Ordering::Equal)),
        (Condition::Compare(op, c), Some(x)) => match pg_cmp(x, c) {
            None => false,
            Some(o) => match op {
                CompareOp::Eq => o == Ordering::Equal,
                CompareOp::Lt => o == Ordering::Less,
                CompareOp::Le => o != Ordering::Greater,
                CompareOp::Gt => o == Ordering::Greater,
                CompareOp::Ge => o != Ordering::Less,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stats_of(values: &[Option<Scalar>]) -> ColumnStats {
        // What a Parquet writer records: min/max over non-null, non-NaN values.
        let mut min: Option<Scalar> = None;
        let mut max: Option<Scalar> = None;
        for v in values.iter().flatten() {
            if matches!(v, Scalar::Float(f) if f.is_nan()) {
                continue;
            }
            if min.as_ref().is_none_or(|m| compare(v, m) == Some(Ordering::Less)) {
                min = Some(v.clone());
            }
            if max.as_ref().is_none_or(|m| compare(v, m) == Some(Ordering::Greater)) {
                max = Some(v.clone());
            }
        }
        ColumnStats {
            min,
            max,
            null_count: Some(values.iter().filter(|v| v.is_none()).count() as u64),
            row_count: Some(values.len() as u64),
        }
    }

    fn float_value() -> impl Strategy<Value = Option<Scalar>> {
        prop_oneof![
            8 => (-5i32..5).prop_map(|i| Some(Scalar::Float(i as f64 * 0.5))),
            1 => Just(Some(Scalar::Float(f64::NAN))),
            1 => Just(None),
        ]
    }

    fn int_value() -> impl Strategy<Value = Option<Scalar>> {
        prop_oneof![9 => (-5i64..5).prop_map(|i| Some(Scalar::Int(i))), 1 => Just(None)]
    }

    fn condition(values: impl Strategy<Value = Scalar> + Clone) -> impl Strategy<Value = Condition> {
        let op = prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Lt),
            Just(CompareOp::Le),
            Just(CompareOp::Gt),
            Just(CompareOp::Ge)
        ];
        prop_oneof![
            (op, values.clone()).prop_map(|(o, v)| Condition::Compare(o, v)),
            proptest::collection::vec(values, 0..4).prop_map(Condition::In),
            Just(Condition::IsNull),
            Just(Condition::IsNotNull),
        ]
    }

    proptest! {
        // Pruning is sound: whenever a group is skipped, no row of it matches (brute force).
        #[test]
        fn float_groups_are_never_wrongly_skipped(
            rows in proptest::collection::vec(float_value(), 1..12),
            cond in condition(prop_oneof![
                (-6i32..6).prop_map(|i| Scalar::Float(i as f64 * 0.5)),
                (-3i64..3).prop_map(Scalar::Int),
                Just(Scalar::Float(f64::NAN)),
            ]),
        ) {
            let stats = stats_of(&rows);
            if !may_match(&cond, &stats, true) {
                prop_assert!(rows.iter().all(|r| !row_matches(&cond, r.as_ref())));
            }
        }

        #[test]
        fn int_groups_are_never_wrongly_skipped(
            rows in proptest::collection::vec(int_value(), 1..12),
            cond in condition(prop_oneof![(-6i64..6).prop_map(Scalar::Int), (-6i32..6).prop_map(|i| Scalar::Float(i as f64 + 0.5))]),
        ) {
            let stats = stats_of(&rows);
            if !may_match(&cond, &stats, false) {
                prop_assert!(rows.iter().all(|r| !row_matches(&cond, r.as_ref())));
            }
        }
    }

    #[test]
    fn integer_ranges_prune_both_sides() {
        let s = ColumnStats {
            min: Some(Scalar::Int(10)),
            max: Some(Scalar::Int(20)),
            null_count: Some(0),
            row_count: Some(5),
        };
        let c = |op, v| Condition::Compare(op, Scalar::Int(v));
        assert!(!may_match(&c(CompareOp::Eq, 9), &s, false));
        assert!(may_match(&c(CompareOp::Eq, 10), &s, false));
        assert!(!may_match(&c(CompareOp::Gt, 20), &s, false));
        assert!(may_match(&c(CompareOp::Ge, 20), &s, false));
        assert!(!may_match(&c(CompareOp::Lt, 10), &s, false));
        assert!(!may_match(&Condition::In(vec![Scalar::Int(1), Scalar::Int(30)]), &s, false));
        assert!(!may_match(&Condition::IsNull, &s, false));
        // Float columns: `>` never prunes (NaN), `<` does.
        let f = ColumnStats {
            min: Some(Scalar::Float(1.0)),
            max: Some(Scalar::Float(2.0)),
            null_count: Some(0),
            row_count: Some(5),
        };
        assert!(may_match(&Condition::Compare(CompareOp::Gt, Scalar::Float(3.0)), &f, true));
        assert!(!may_match(&Condition::Compare(CompareOp::Lt, Scalar::Float(0.5)), &f, true));
        // Strings prune on equality only.
        let t = ColumnStats {
            min: Some(Scalar::Str("g".into())),
            max: Some(Scalar::Str("r".into())),
            null_count: Some(0),
            row_count: Some(5),
        };
        assert!(!may_match(&Condition::Compare(CompareOp::Eq, Scalar::Str("z".into())), &t, false));
        assert!(may_match(&Condition::Compare(CompareOp::Gt, Scalar::Str("z".into())), &t, false));
    }
}
