//! Glue of the scale-out functions (sql/scaleout.sql orchestrates them on a Citus cluster):
//! `crossmatch_chunk`, one sky chunk of a distributed cross-match, run on the worker that holds
//! the chunk's shards (skycat_core::crossmatch::chunked).

use pgrx::prelude::*;
use skycat_core::crossmatch::{self as xm, chunked, Mode, Source};
use skycat_core::error::SkyError;

use crate::cancel::run_cancellable;
use crate::errors::{raise, OrSqlError};

const NAME: &str = "crossmatch_chunk";

/// The rows of one side from its id, ra and dec arrays (same length, no NULL), checked like
/// every cross-match input.
fn sources(side: &'static str, id: &Array<i64>, ra: &Array<f64>, dec: &Array<f64>) -> Vec<Source> {
    let n = id.len();
    if ra.len() != n || dec.len() != n {
        raise(
            NAME,
            &SkyError::invalid(
                side,
                "id, ra and dec arrays of one length",
                format!("{n}, {}, {}", ra.len(), dec.len()),
            ),
        );
    }
    let max_rows = crate::gucs::CROSSMATCH_MAX_ROWS.get() as u64;
    if n as u64 > max_rows {
        let hint = "raise skycat.crossmatch_max_rows (superuser) or use smaller chunks";
        raise(NAME, &SkyError::TooLarge { what: "input rows", estimated: n as u64, limit: max_rows, hint });
    }
    let mut rows = Vec::with_capacity(n);
    for ((i, r), d) in id.iter().zip(ra.iter()).zip(dec.iter()) {
        match (i, r, d) {
            (Some(i), Some(r), Some(d)) => rows.push(Source::new(i, r, d)),
            _ => raise(NAME, &SkyError::invalid(side, "arrays without NULL elements", "a NULL")),
        }
    }
    xm::validate_sources(side, &mut rows).or_sql_error(NAME);
    rows
}

fn flags(name: &'static str, edge: &Array<bool>) -> Vec<bool> {
    edge.iter()
        .map(|e| e.unwrap_or_else(|| raise(NAME, &SkyError::invalid(name, "an array without NULL elements", "a NULL"))))
        .collect()
}

/// One sky chunk of a distributed cross-match: the chunk's left rows against its right rows
/// and margin (docs/scale-out.md). `all` and `nearest` rows are final; for `greedy` and
/// `optimal`, rows with `deferred` belong to assignment components that reach another chunk
/// (they hold an edge row) and carry both positions so the caller can solve them together.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(immutable, strict, parallel_safe)]
fn crossmatch_chunk(
    left_id: Array<i64>,
    left_ra: Array<f64>,
    left_dec: Array<f64>,
    left_edge: Array<bool>,
    right_id: Array<i64>,
    right_ra: Array<f64>,
    right_dec: Array<f64>,
    right_edge: Array<bool>,
    radius_arcsec: f64,
    mode: &str,
) -> TableIterator<
    'static,
    (
        name!(left_id, i64),
        name!(right_id, i64),
        name!(sep_arcsec, f64),
        name!(rank, i32),
        name!(deferred, bool),
        name!(left_ra, Option<f64>),
        name!(left_dec, Option<f64>),
        name!(right_ra, Option<f64>),
        name!(right_dec, Option<f64>),
    ),
> {
    let mode = Mode::parse(mode).or_sql_error(NAME);
    let left = sources("left", &left_id, &left_ra, &left_dec);
    let right = sources("right", &right_id, &right_ra, &right_dec);
    let (left_edge, right_edge) = (flags("left_edge", &left_edge), flags("right_edge", &right_edge));
    let max_pairs = crate::gucs::CROSSMATCH_MAX_PAIRS.get() as usize;
    let pairs = run_cancellable(|stop| {
        chunked::crossmatch_chunk(
            &left,
            &left_edge,
            &right,
            &right_edge,
            radius_arcsec,
            mode,
            &xm::Control { max_pairs, cancel: stop },
        )
    })
    .or_sql_error(NAME);
    let rows: Vec<_> = pairs
        .into_iter()
        .map(|p| {
            let (l, r) = (left[p.pair.left as usize], right[p.pair.right as usize]);
            let at = |v: f64| p.deferred.then_some(v);
            (l.id, r.id, p.pair.sep_arcsec, p.rank, p.deferred, at(l.ra), at(l.dec), at(r.ra), at(r.dec))
        })
        .collect();
    TableIterator::new(rows)
}
