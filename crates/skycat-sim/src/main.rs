//! `skycat-sim`: write simulated catalogs as CSV (for COPY ... FROM STDIN) with a progress bar.
//!
//!   skycat-sim sky --kind uniform --n 1000000 --seed 1 > left.csv
//!   skycat-sim sky --kind clustered --n 1000000 --seed 1 --reobserve-seed 2 > right.csv
//!
//! Columns: id,ra,dec,ra_err_arcsec,dec_err_arcsec (no header unless --header).

use std::io::{BufWriter, Write};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use skycat_sim::sky::{self, SimSource};

#[derive(Parser)]
#[command(name = "skycat-sim", version, about = "Deterministic survey simulator for skycat")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Uniform on the whole sphere.
    Uniform,
    /// Clusters over a uniform background.
    Clustered,
    /// Uniform within a field of view (--field-ra, --field-dec, --field-radius-deg).
    Field,
}

#[derive(Subcommand)]
enum Cmd {
    /// A sky of positions, optionally re-observed (same objects with astrometric noise).
    Sky {
        #[arg(long, value_enum, default_value = "uniform")]
        kind: Kind,
        #[arg(long)]
        n: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First id.
        #[arg(long, default_value_t = 1)]
        id0: i64,
        /// Clusters in a clustered sky, and the fraction of sources in them.
        #[arg(long, default_value_t = 2000)]
        clusters: usize,
        #[arg(long, default_value_t = 0.5)]
        cluster_fraction: f64,
        #[arg(long, default_value_t = 150.0)]
        field_ra: f64,
        #[arg(long, default_value_t = 2.2)]
        field_dec: f64,
        #[arg(long, default_value_t = 1.75)]
        field_radius_deg: f64,
        /// Write a re-observation of the sky (generated from --seed) instead of the sky itself.
        #[arg(long)]
        reobserve_seed: Option<u64>,
        /// Re-observation: fraction re-detected, extra noise (arcsec), new sources.
        #[arg(long, default_value_t = 0.8)]
        detect_fraction: f64,
        #[arg(long, default_value_t = 0.1)]
        extra_sigma_arcsec: f64,
        #[arg(long, default_value_t = 0.2)]
        new_fraction: f64,
        #[arg(long)]
        header: bool,
    },
}

fn main() -> std::io::Result<()> {
    let Cmd::Sky {
        kind,
        n,
        seed,
        id0,
        clusters,
        cluster_fraction,
        field_ra,
        field_dec,
        field_radius_deg,
        reobserve_seed,
        detect_fraction,
        extra_sigma_arcsec,
        new_fraction,
        header,
    } = Cli::parse().cmd;
    let mut rows: Vec<SimSource> = match kind {
        Kind::Uniform => sky::uniform(n, seed, id0),
        Kind::Clustered => sky::clustered(n, seed, id0, clusters, cluster_fraction),
        Kind::Field => sky::in_field(n, seed, id0, field_ra, field_dec, field_radius_deg),
    };
    if let Some(s2) = reobserve_seed {
        let n_new = (n as f64 * new_fraction) as usize;
        rows = sky::reobserve(&rows, s2, id0, detect_fraction, extra_sigma_arcsec, n_new);
    }
    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} writing {pos}/{len} rows {bar:40} {eta}").expect("valid template"),
    );
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    if header {
        writeln!(out, "id,ra,dec,ra_err_arcsec,dec_err_arcsec")?;
    }
    for (k, s) in rows.iter().enumerate() {
        writeln!(out, "{},{:.12},{:.12},{:.4},{:.4}", s.id, s.ra, s.dec, s.ra_err_arcsec, s.dec_err_arcsec)?;
        if k % 100_000 == 0 {
            bar.set_position(k as u64);
        }
    }
    bar.finish_and_clear();
    out.flush()
}
