//! skycat: the PostgreSQL extension. This crate is glue only: it converts between
//! PostgreSQL and `skycat_core` types and reports errors; algorithms live in `skycat-core`.

::pgrx::pg_module_magic!(name, version);

mod aggregates;
mod calibration;
mod cancel;
mod crossmatch;
mod dwithin;
mod errors;
mod fastcall;
mod files_fdw;
mod geometry;
mod gucs;
mod lc_scan;
mod partitioning;
mod plan_hooks;
mod planner;
mod propagation;
mod scaleout;
mod sky_point;
mod skymap;
mod sqltypes;

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::register();
    // Long loops in skycat-core poll PostgreSQL's interrupt flags.
    skycat_core::interrupt::install(errors::interrupt_pending);
    // dwithin joins on declination-partitioned tables: realistic costs, no JIT.
    plan_hooks::install();
}

// Hand-written SQL shipped with the extension (see sql/).
pgrx::extension_sql_file!(
    "../sql/create_stripe_partitions.sql",
    name = "create_stripe_partitions",
    requires = [partitioning::stripe_bounds]
);

// The shared layer under the procedures: policy, calibration SQL generators.
pgrx::extension_sql_file!("../sql/toolkit.sql", name = "toolkit");

pgrx::extension_sql_file!(
    "../sql/calibration.sql",
    name = "calibration_procedures",
    requires = [
        "toolkit",
        "calibration_types",
        "pixel_to_sky",
        "pixel_to_sky_cov",
        "nanojansky",
        "nanojansky_err",
        "calibration_at",
        "calibration_err",
        "recalibrate",
        "recalibrate_err"
    ]
);

// The exposure metadata the AP's post-process phase ingests from the image-processing files.
pgrx::extension_sql_file!("../sql/ap_exposures.sql", name = "ap_exposures", requires = ["toolkit"]);

pgrx::extension_sql_file!(
    "../sql/ap.sql",
    name = "ap_procedures",
    requires = [
        "toolkit",
        "ap_exposures",
        "flux_summary_add",
        "create_stripe_partitions",
        "crossmatch",
        "dwithin",
        "flux_mean_aggregate",
        "lc_row_used",
        geometry::ap_ra_ranges
    ]
);

pgrx::extension_sql_file!(
    "../sql/drp.sql",
    name = "drp_procedures",
    requires = [
        "calibration_procedures",
        "create_stripe_partitions",
        "lc_stats_aggregate",
        "skymap_tract",
        "chunk_id",
        "sub_chunk_id",
        partitioning::chunks_in_circle,
        skymap::skymap_tract_region,
        skymap::polygon_contains,
        files_fdw::write_parquet::write_parquet
    ]
);

// Scale-out on a Citus cluster: distributed sky tables, margins, the distributed cross-match.
pgrx::extension_sql_file!(
    "../sql/scaleout.sql",
    name = "scaleout",
    requires =
        ["toolkit", "crossmatch", "chunk_id", "chunk_edge", partitioning::chunks_in_circle, scaleout::crossmatch_chunk]
);

// Every skycat function, type and aggregate is for pipeline roles too, not only the superuser
// who ran CREATE EXTENSION. (Naming server files still needs pg_read_server_files, writing
// them pg_write_server_files, and the cross-match memory limits are superuser settings.)
pgrx::extension_sql!("GRANT USAGE ON SCHEMA skycat TO PUBLIC;", name = "grant_usage");

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
