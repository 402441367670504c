//! Settings (`SET skycat.<name> = ...`).

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use skycat_core::crossmatch::DEFAULT_MAX_PAIRS;

/// Most candidate pairs `skycat.crossmatch` holds in memory (16 bytes each) before it stops
/// with an error instead of exhausting the server's memory.
pub static CROSSMATCH_MAX_PAIRS: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_MAX_PAIRS as i32);

/// Most rows `skycat.crossmatch` reads from one input (40 bytes each) before it stops with an
/// error instead of exhausting the server's memory.
pub static CROSSMATCH_MAX_ROWS: GucSetting<i32> = GucSetting::<i32>::new(50_000_000);

/// Most rows one `skycat.lc_stats` group holds (24 bytes each) before it stops with an error.
pub static LC_STATS_MAX_ROWS: GucSetting<i32> = GucSetting::<i32>::new(10_000_000);

pub fn register() {
    GucRegistry::define_int_guc(
        c"skycat.lc_stats_max_rows",
        c"Most rows one skycat.lc_stats group holds in memory (24 bytes each).",
        c"Above it, lc_stats stops with an error (SQLSTATE 54000) rather than exhausting memory; at most 40000000.",
        &LC_STATS_MAX_ROWS,
        2,
        40_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    // The cross-match limits bound memory a single SELECT can take outside PostgreSQL's
    // memory contexts, so only a superuser (or ALTER SYSTEM / ALTER ROLE ... SET by one)
    // may change them.
    GucRegistry::define_int_guc(
        c"skycat.crossmatch_max_pairs",
        c"Most candidate pairs skycat.crossmatch holds in memory (16 bytes each).",
        c"Above it, crossmatch stops with an error (SQLSTATE 54000) rather than exhausting memory. Superuser only.",
        &CROSSMATCH_MAX_PAIRS,
        1000,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"skycat.crossmatch_max_rows",
        c"Most rows skycat.crossmatch reads from each input (40 bytes each).",
        c"Above it, crossmatch stops with an error (SQLSTATE 54000) rather than exhausting memory. Superuser only.",
        &CROSSMATCH_MAX_ROWS,
        1000,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
}
