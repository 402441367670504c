//! `skycat-sim`: write simulated catalogs as CSV (for COPY ... FROM STDIN) or Parquet (for the
//! `skycat_files` wrapper) with a progress bar.
//!
//!   skycat-sim sky --kind uniform --n 1000000 --seed 1 > left.csv
//!   skycat-sim sky --kind clustered --n 1000000 --seed 1 --reobserve-seed 2 > right.csv
//!
//!   skycat-sim tract-calibs --visits 3 --detectors 189 > calibs.csv
//!   skycat-sim tract-raw --visits 3 --detectors 189 --per-detector 20000 > raw.csv
//!   skycat-sim forced-source --objects 500000 --bands 6 --epochs 17 > forced_source.csv
//!
//! Columns (no header unless --header):
//!   sky:          id,ra,dec,ra_err_arcsec,dec_err_arcsec
//!   tract-calibs: visit,detector,calib_mean,calib_err,wcs (the WCS as quoted JSON)
//!   tract-raw:    source_id,visit,detector,x,y,x_err,y_err,psf_inst_flux,psf_inst_flux_err,
//!                 ap_inst_flux,ap_inst_flux_err (failed measurements are NaN)
//!   forced-source: object_id,band,mjd,psf_flux,psf_flux_err (failed measurements are NaN)
//!
//!   skycat-sim forced-parquet --objects 500000 --files 20 --dir target/fp   (tract=<k>/forcedSource.parquet)
//!
//!   skycat-sim night --objects 200000 --visits 30 --dir target/night   (CSV files per table)
//!   skycat-sim night --format parquet --dir target/night   (visit=<v>/dia_source.parquet, ...)
//!   skycat-sim night --format both --dir target/night      (both sets of files in one directory)
//!
//! night, --format csv (default; skycat_sim::night::write_csv): object.csv, moving_object.csv,
//!   visit.csv, dia_source_new.csv, mops_pred.csv, truth.csv.
//! night, --format parquet (skycat_sim::night_parquet::write_parquet):
//!   visit=<visit>/dia_source.parquet             the columns of ap.dia_source_new, in its order
//!   visit=<visit>/visit.parquet                  visit,ra,dec,mjd,band (one row)
//!   visit=<visit>/fpa_exposure.parquet           exposure_id,ra,dec,mjd,band,exp_time (2 snaps of 15 s,
//!                                                exposure_id = visit * 2 + snap)
//!   visit=<visit>/fpa_exposure_to_visit.parquet  exposure_id,visit (2 rows)
//!   visit=<visit>/ccd_exposure.parquet           exposure_id,ccd,ra,dec,zero_point,seeing_arcsec,
//!                                                sky_background (189 CCDs per snap)
//!   visit=<visit>/amp_exposure.parquet           exposure_id,ccd,amp,gain,read_noise,bias_level
//!                                                (16 amplifiers per CCD)
//!   mops_pred.parquet                            the columns of ap.mops_pred; truth.parquet: dia_source_id,kind,truth_id
//!
//!   skycat-sim drp --dir target/drp [--objects 100000 --tracts 4 --visits-per-tract 24 --seed 1]
//!
//! drp (skycat_sim::drp, skycat_sim::drp_parquet::write_release): a data release of the --tracts
//!   tracts nearest (--ra0, --dec0) in a rings skymap, per tract (the tract is in the path only):
//!   tract=<t>/calib.parquet          visit,detector,band,mjd,calib_mean,calib_err,wcs (FITS-keyword JSON)
//!   tract=<t>/object.parquet         object_id,ra,dec (measured coadd position)
//!   tract=<t>/source.parquet         source_id,object_id,visit,detector,x,y,x_err,y_err,psf_inst_flux,psf_inst_flux_err
//!   tract=<t>/dia_source.parquet     dia_source_id,visit,detector,x,y,x_err,y_err,psf_inst_flux,psf_inst_flux_err
//!   tract=<t>/forced_source.parquet  object_id,visit,detector,ra,dec,x,y,psf_inst_flux,psf_inst_flux_err
//!   tract=<t>/object_truth.parquet   object_id,truth_id
//!   truth_object.parquet             truth_id,ra,dec,ra_meas,dec_meas,primary_tract,in_release,variable,
//!                                    u_flux,g_flux,r_flux,i_flux,z_flux,y_flux (nJy)
//!   release.json                     num_rings,border_deg,tracts,visits_per_tract,objects,seed,ra0,dec0,rows

use std::io::{BufWriter, Write};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use skycat_sim::sky::{self, SimSource};
use skycat_sim::{csv_f64, drp, drp_parquet, forced, night, night_parquet, tract};

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

/// What `drp` writes.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DrpFormat {
    /// Per-tract Parquet (`tract=<t>/...`) plus the truth and release.json at the root.
    Parquet,
}

/// What `night` writes.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NightFormat {
    /// CSV files for COPY, one per table.
    Csv,
    /// Per-visit Parquet (DIASources, exposure metadata) plus night-wide MOPS predictions and truth.
    Parquet,
    /// Both, side by side in --dir.
    Both,
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
    /// Per-(visit, detector) calibrations of a simulated tract: photometric calibration and TAN-SIP WCS.
    TractCalibs {
        #[command(flatten)]
        tract: TractArgs,
        #[arg(long)]
        header: bool,
    },
    /// Raw (uncalibrated) sources of a simulated tract, matching `tract-calibs` with the same arguments.
    TractRaw {
        #[command(flatten)]
        tract: TractArgs,
        #[arg(long, default_value_t = 10_000)]
        per_detector: usize,
        #[arg(long)]
        header: bool,
    },
    /// A 12-column ForcedSource Parquet dataset, `tract=<k>/forcedSource.parquet` per file.
    ForcedParquet {
        #[arg(long)]
        objects: usize,
        #[arg(long, default_value_t = 20)]
        files: usize,
        #[arg(long, default_value_t = 131_072)]
        row_group_rows: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (created).
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// A night of Association Pipeline inputs with its truth, as CSV files and/or per-visit
    /// Parquet in --dir (see skycat_sim::night::write_csv and
    /// skycat_sim::night_parquet::write_parquet for the files and columns).
    Night {
        #[command(flatten)]
        night: night::NightArgs,
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, value_enum, default_value = "csv")]
        format: NightFormat,
    },
    /// A simulated data release: per-tract DRP outputs (calibrations, objects, sources, DIA
    /// sources, forced photometry, object truth) as `tract=<t>/*.parquet` in --dir, plus
    /// truth_object.parquet and release.json (see skycat_sim::drp_parquet for the columns).
    Drp {
        #[command(flatten)]
        drp: drp::DrpArgs,
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, value_enum, default_value = "parquet")]
        format: DrpFormat,
    },
    /// ForcedSource light curves: objects x bands x ~epochs rows, in (object, band) order.
    ForcedSource {
        #[arg(long)]
        objects: usize,
        #[arg(long, default_value_t = 6)]
        bands: usize,
        #[arg(long, default_value_t = 17.0)]
        epochs: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        header: bool,
    },
}

#[derive(clap::Args)]
struct TractArgs {
    #[arg(long, default_value_t = 3)]
    visits: usize,
    #[arg(long, default_value_t = 189)]
    detectors: usize,
    #[arg(long, default_value_t = 1)]
    visit0: i64,
    #[arg(long, default_value_t = 150.0)]
    ra: f64,
    #[arg(long, default_value_t = 2.2)]
    dec: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl TractArgs {
    fn calibs(&self) -> Vec<tract::DetectorCalib> {
        tract::calibs(self.visits, self.detectors, self.visit0, self.ra, self.dec, self.seed)
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} writing {{pos}}/{{len}} {what} {{bar:40}} {{eta}}"))
            .expect("valid template"),
    );
    bar
}

fn main() -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match Cli::parse().cmd {
        Cmd::TractCalibs { tract, header } => {
            if header {
                writeln!(out, "visit,detector,calib_mean,calib_err,wcs")?;
            }
            for c in tract.calibs() {
                let json = c.wcs.to_json().replace('"', "\"\"");
                writeln!(out, "{},{},{},{},\"{json}\"", c.visit, c.detector, c.calib_mean, c.calib_err)?;
            }
            out.flush()
        }
        Cmd::TractRaw { tract, per_detector, header } => {
            if header {
                writeln!(
                    out,
                    "source_id,visit,detector,x,y,x_err,y_err,psf_inst_flux,psf_inst_flux_err,ap_inst_flux,ap_inst_flux_err"
                )?;
            }
            let calibs = tract.calibs();
            let bar = bar((calibs.len() * per_detector) as u64, "raw sources");
            let mut result = Ok(());
            tract::raw_sources(&calibs, per_detector, tract.seed.wrapping_add(1), |s| {
                if result.is_err() {
                    return;
                }
                result = writeln!(
                    out,
                    "{},{},{},{},{},{:.4},{:.4},{},{},{},{}",
                    s.source_id,
                    s.visit,
                    s.detector,
                    s.x,
                    s.y,
                    s.x_err,
                    s.y_err,
                    csv_f64(s.psf_inst_flux),
                    csv_f64(s.psf_inst_flux_err),
                    csv_f64(s.ap_inst_flux),
                    csv_f64(s.ap_inst_flux_err)
                );
                if s.source_id % 100_000 == 0 {
                    bar.set_position(s.source_id as u64);
                }
            });
            bar.finish_and_clear();
            result?;
            out.flush()
        }
        Cmd::ForcedParquet { objects, files, row_group_rows, seed, dir } => {
            let bar = bar(objects as u64, "objects");
            let rows =
                skycat_sim::forced_parquet::write_forced_parquet(&dir, objects, files, row_group_rows, seed, |done| {
                    bar.set_position(done as u64)
                })
                .map_err(std::io::Error::other)?;
            bar.finish_and_clear();
            eprintln!("wrote {rows} rows in {files} files under {}", dir.display());
            Ok(())
        }
        Cmd::ForcedSource { objects, bands, epochs, seed, header } => {
            if header {
                writeln!(out, "object_id,band,mjd,psf_flux,psf_flux_err")?;
            }
            let bar = bar(objects as u64, "objects");
            let mut result = Ok(());
            forced::forced_sources(objects, bands, epochs, seed, |s| {
                if result.is_ok() {
                    result = writeln!(
                        out,
                        "{},{},{},{},{}",
                        s.object_id,
                        s.band,
                        s.mjd,
                        csv_f64(s.psf_flux),
                        csv_f64(s.psf_flux_err)
                    );
                }
                if s.object_id % 10_000 == 0 {
                    bar.set_position(s.object_id as u64);
                }
            });
            bar.finish_and_clear();
            result?;
            out.flush()
        }
        Cmd::Night { night: args, dir, format } => {
            let config = args.config().map_err(std::io::Error::other)?;
            let (objects, visits) = (config.objects, config.visits);
            let spinner = ProgressBar::new_spinner();
            spinner.set_message(format!("simulating {objects} objects, {visits} visits"));
            let n = night::simulate(&config);
            spinner.finish_and_clear();
            if format != NightFormat::Parquet {
                let bar = bar(n.visits.len() as u64, "visits (CSV)");
                night::write_csv(&n, &dir, |k| bar.set_position(k as u64))?;
                bar.finish_and_clear();
            }
            if format != NightFormat::Csv {
                let bar = bar(n.visits.len() as u64, "visits (Parquet)");
                night_parquet::write_parquet(&n, &dir, |k| bar.set_position(k as u64))
                    .map_err(std::io::Error::other)?;
                bar.finish_and_clear();
            }
            let sources: usize = n.sources.iter().map(Vec::len).sum();
            let what = match format {
                NightFormat::Csv => "CSV",
                NightFormat::Parquet => "Parquet",
                NightFormat::Both => "CSV and Parquet",
            };
            // The catalog before the night (objects, moving objects) is written as CSV only.
            let catalog = match format {
                NightFormat::Parquet => String::new(),
                _ => format!(", {} objects", n.objects.len()),
            };
            eprintln!(
                "wrote {} visits, {sources} DIASources{catalog} as {what} under {}",
                n.visits.len(),
                dir.display()
            );
            Ok(())
        }
        Cmd::Drp { drp: args, dir, format: DrpFormat::Parquet } => {
            let config = args.config().map_err(std::io::Error::other)?;
            let tracts = config.tract_ids();
            let start = std::time::Instant::now();
            let mut current = usize::MAX;
            let mut tract_bar: Option<ProgressBar> = None;
            let counts = drp_parquet::write_release(&config, &dir, |k, visits| {
                if k != current {
                    if let Some(b) = tract_bar.take() {
                        b.finish_and_clear();
                    }
                    let what = format!("visits of tract {} ({}/{})", tracts[k], k + 1, tracts.len());
                    tract_bar = Some(bar(config.visits_per_tract as u64, &what));
                    current = k;
                }
                if let Some(b) = &tract_bar {
                    b.set_position(visits as u64);
                }
            })
            .map_err(std::io::Error::other)?;
            if let Some(b) = tract_bar {
                b.finish_and_clear();
            }
            let rows: Vec<String> = counts.tables().iter().map(|(t, n)| format!("{t} {n}")).collect();
            eprintln!(
                "wrote tracts {tracts:?} under {} in {:.1} s: {}",
                dir.display(),
                start.elapsed().as_secs_f64(),
                rows.join(", ")
            );
            Ok(())
        }
        Cmd::Sky { .. } => sky_main(out),
    }
}

fn sky_main(mut out: impl Write) -> std::io::Result<()> {
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
    } = Cli::parse().cmd
    else {
        unreachable!("sky_main is only called for the sky command")
    };
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
