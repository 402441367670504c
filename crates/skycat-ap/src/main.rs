//! `skycat-ap`: simulate a night, load it into an AP schema and run it through skycat's
//! Association Pipeline procedures with progress bars; print the per-visit latency table and
//! the association score; optionally plot the latencies and write the numbers as JSON.
//!
//!   skycat-ap night --dsn "host=... dbname=..." --schema ap --objects 200000 --visits 30 \
//!       --sessions 3 --plot target/demo/ap-latency.png
//!
//! `--exposure-files DIR` also writes the visits' exposure metadata files under DIR and has
//! every post ingest them (see `load::exposure_files`).

use std::time::Instant;

use clap::Parser;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use skycat_ap::run::{self, Phase, Sessions};
use skycat_ap::{load, median, plot, score};
use skycat_sim::night;

#[derive(Parser)]
#[command(name = "skycat-ap", version, about = "Run a simulated night through skycat's Association Pipeline")]
enum Cli {
    /// Simulate, load and run one night.
    Night(NightCmd),
}

#[derive(clap::Args)]
struct NightCmd {
    /// libpq-style connection string of a database with skycat installed.
    #[arg(long)]
    dsn: String,
    /// The AP schema to create (an existing one is dropped first).
    #[arg(long, default_value = "ap")]
    schema: String,
    #[command(flatten)]
    sim: night::NightArgs,
    /// 3: prepare(n+1), associate(n) and post(n-1) in three concurrent sessions; 1: in sequence.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    sessions: u8,
    /// Policy assoc_mode: greedy or optimal.
    #[arg(long, default_value = "greedy")]
    assoc_mode: String,
    /// Run only the first N visits (the rest stay staged in sim_dia_source).
    #[arg(long)]
    run_visits: Option<usize>,
    /// Check every candidate pair against a brute-force computation (slow on big skies).
    #[arg(long)]
    check_pairs: bool,
    /// Write a PNG of the per-visit phase latencies here.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// Write the timings and the score as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Also write each visit's exposure metadata as image processing would
    /// (DIR/visit=<v>/{visit,fpa_exposure,fpa_exposure_to_visit,ccd_exposure,amp_exposure}.parquet)
    /// and have every ap_post_visit ingest its visit's files (skycat.ap_exposure_files, over a
    /// skycat_files server <schema>_exposure_files rooted at DIR). DIR is created; the database
    /// server must be able to read it (same machine). Off by default.
    #[arg(long, value_name = "DIR")]
    exposure_files: Option<std::path::PathBuf>,
}

fn main() {
    let Cli::Night(a) = Cli::parse();
    if let Err(e) = night_cmd(&a) {
        eprintln!("skycat-ap: {e}");
        std::process::exit(1);
    }
}

fn night_cmd(a: &NightCmd) -> Result<(), String> {
    let sessions = if a.sessions == 3 { Sessions::Three } else { Sessions::One };
    let config = a.sim.config()?;
    let (objects, sources_per_visit) = (config.objects, config.sources_per_visit);
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    spinner.set_message(format!(
        "simulating {} objects, {} visits of ~{} DIASources",
        objects, config.visits, sources_per_visit
    ));
    let t = Instant::now();
    let sim = night::simulate(&config);
    let n_sources: usize = sim.sources.iter().map(Vec::len).sum();
    spinner.set_message(format!("loading {} objects and {n_sources} DIASources into schema {}", objects, a.schema));
    let t_sim = t.elapsed().as_secs_f64();
    let mut client = run::connect(&a.dsn)?;
    let t = Instant::now();
    load::load_night(&mut client, &a.schema, &sim, true).map_err(|e| run::describe(&e, "load"))?;
    client
        .execute(
            &format!("UPDATE {}.policy SET value = $1 WHERE key = 'assoc_mode'", skycat_ap::ident(&a.schema)),
            &[&a.assoc_mode],
        )
        .map_err(|e| run::describe(&e, "policy"))?;
    if let Some(dir) = &a.exposure_files {
        spinner.set_message(format!("writing the exposure files under {}", dir.display()));
        let msg = load::exposure_files(&mut client, &a.schema, &sim, dir)?;
        spinner.println(msg);
    }
    let t_load = t.elapsed().as_secs_f64();
    spinner.finish_and_clear();
    eprintln!(
        "simulated in {t_sim:.1} s, loaded in {t_load:.1} s: {} objects, {} visits, {n_sources} DIASources",
        objects,
        sim.visits.len()
    );

    let mut pointings = run::pointings(&mut client, &a.schema).map_err(|e| run::describe(&e, "visits"))?;
    pointings.truncate(a.run_visits.unwrap_or(usize::MAX));
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} visits {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let bars: Vec<ProgressBar> = ["prepare", "associate", "post"]
        .iter()
        .map(|name| {
            let b = multi.add(ProgressBar::new(pointings.len() as u64));
            b.set_style(style.clone());
            b.set_prefix(*name);
            b
        })
        .collect();
    let progress = |phase: Phase, visit: i64| {
        let b = &bars[phase as usize];
        b.inc(1);
        b.set_message(format!("(visit {visit})"));
    };
    let timing = run::run_night(&a.dsn, &a.schema, "2026-11-23", &pointings, sessions, &progress)?;
    bars.iter().for_each(ProgressBar::finish);

    let lat = run::latencies(&mut client, &a.schema).map_err(|e| run::describe(&e, "visit_log"))?;
    println!(
        "\n{:>8} {:>9} {:>11} {:>13} {:>9} {:>11}",
        "visit", "sources", "prepare ms", "associate ms", "post ms", "sum ms"
    );
    for l in &lat {
        let sum = l.prepare_s + l.associate_s + l.post_s;
        println!(
            "{:>8} {:>9} {:>11.0} {:>13.0} {:>9.0} {:>11.0}",
            l.visit,
            l.n_sources,
            l.prepare_s * 1e3,
            l.associate_s * 1e3,
            l.post_s * 1e3,
            sum * 1e3
        );
    }
    let col = |f: fn(&plot::VisitLatency) -> f64| median(&lat.iter().map(f).collect::<Vec<_>>()) * 1e3;
    let (mp, ma, mq) = (col(|l| l.prepare_s), col(|l| l.associate_s), col(|l| l.post_s));
    let msum = col(|l| l.prepare_s + l.associate_s + l.post_s);
    println!("{:>8} {:>9} {mp:>11.0} {ma:>13.0} {mq:>9.0} {msum:>11.0}", "median", "");
    let step = median(&timing.step_s);
    println!(
        "night: {:.1} s wall for {} visits with {} session(s); median step (the cadence it sustains) {:.0} ms",
        timing.wall_s,
        pointings.len(),
        a.sessions,
        step * 1e3
    );

    if a.exposure_files.is_some() {
        let s = skycat_ap::ident(&a.schema);
        let row = client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {s}.fpa_exposure), (SELECT count(*) FROM {s}.ccd_exposure),
                            (SELECT count(*) FROM {s}.amp_exposure)"
                ),
                &[],
            )
            .map_err(|e| run::describe(&e, "exposure tables"))?;
        let (fpa, ccd, amp): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        println!("exposure metadata ingested at post: {fpa} exposures, {ccd} CCD rows, {amp} amplifier rows");
    }
    let sc = score::score(&mut client, &a.schema).map_err(|e| run::describe(&e, "score"))?;
    println!(
        "association vs truth: completeness {:.3}%, purity {:.3}% ({} of {} object detections right); \
         moving {:.2}%; artefacts junk {:.2}%; DIASources lost {}, duplicated {}",
        100.0 * sc.completeness(),
        100.0 * sc.purity(),
        sc.n_object_correct,
        sc.n_object_truth,
        100.0 * sc.moving_correct(),
        100.0 * sc.artefacts_junk(),
        sc.lost(),
        sc.duplicated()
    );
    let pairs = if a.check_pairs {
        let (n, missing, extra) = score::check_pairs(&mut client, &a.schema).map_err(|e| run::describe(&e, "pairs"))?;
        println!("candidate pairs: {n} by brute force; missing from dia_source_match {missing}, extra {extra}");
        Some((n, missing, extra))
    } else {
        None
    };
    if let Some(path) = &a.plot {
        let title = format!(
            "skycat AP: {} visits, ~{} DIASources/visit, {} objects, {} session(s)",
            pointings.len(),
            sources_per_visit,
            objects,
            a.sessions
        );
        // The 2 s cycle target is for one session; in three sessions the phases of
        // consecutive visits overlap, so their sum is no deadline.
        let budget = (sessions == Sessions::One).then_some(2.0);
        plot::plot_latencies(path, &title, &lat, budget)?;
        println!("latency plot: {}", path.display());
    }
    if let Some(path) = &a.json {
        let visits: Vec<serde_json::Value> = lat
            .iter()
            .map(|l| {
                serde_json::json!({"visit": l.visit, "n_sources": l.n_sources, "prepare_s": l.prepare_s,
                                   "associate_s": l.associate_s, "post_s": l.post_s})
            })
            .collect();
        let doc = serde_json::json!({
            "objects": objects, "visits_run": pointings.len(), "sources_per_visit": sources_per_visit,
            "sessions": a.sessions, "assoc_mode": a.assoc_mode, "load_s": t_load, "wall_s": timing.wall_s,
            "step_s": timing.step_s, "visits": visits,
            "score": {"completeness": sc.completeness(), "purity": sc.purity(), "moving": sc.moving_correct(),
                      "artefacts_junk": sc.artefacts_junk(), "lost": sc.lost(), "duplicated": sc.duplicated(),
                      "n_truth": sc.n_truth},
            "pairs": pairs.map(|(n, m, x)| serde_json::json!({"expected": n, "missing": m, "extra": x})),
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc).expect("json"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
