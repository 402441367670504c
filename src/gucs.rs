//! Settings (`SET skycat.<name> = ...`).

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use skycat_core::crossmatch::DEFAULT_MAX_PAIRS;

/// Most candidate pairs `skycat.crossmatch` holds in memory (16 bytes each) before it stops
/// with an error instead of exhausting the server's memory.
pub static CROSSMATCH_MAX_PAIRS: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_MAX_PAIRS as i32);

pub fn register() {
    GucRegistry::define_int_guc(
        c"skycat.crossmatch_max_pairs",
        c"Most candidate pairs skycat.crossmatch holds in memory (16 bytes each).",
        c"Above it, crossmatch stops with an error (SQLSTATE 54000) rather than exhausting memory.",
        &CROSSMATCH_MAX_PAIRS,
        1000,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
}
