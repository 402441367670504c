//! Loads a simulated night into a fresh AP schema: the static sky into `object` (sorted by ra,
//! so each dec stripe is physically in ra order and its BRIN index on ra is tight), moving
//! objects, MOPS predictions and visits, and two tables the pipeline itself never reads: the
//! night's DIASources staged per visit (`sim_dia_source`, what the detection pipeline will
//! insert into `dia_source_new` visit by visit) and the truth (`sim_truth`). Optionally
//! ([`exposure_files`]) the night's exposure metadata as the per-visit files image processing
//! writes, which the AP then ingests at each post.

use std::io::Write;

use postgres::Client;
use skycat_sim::csv_f64 as f;
use skycat_sim::night::{write_dia_source_csv, write_truth_csv, Night};

use crate::ident;

/// Creates `schema` with `skycat.ap_create` (dropping an existing one first when `replace`) and
/// loads `night` into it. Returns the number of static objects loaded.
pub fn load_night(client: &mut Client, schema: &str, night: &Night, replace: bool) -> Result<u64, postgres::Error> {
    let s = ident(schema);
    if replace {
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))?;
    }
    client.execute("SELECT skycat.ap_create($1)", &[&schema])?;
    client.execute(
        &format!("UPDATE {s}.policy SET value = $1 WHERE key = 'fov_radius_deg'"),
        &[&night.config.fov_radius_deg.to_string()],
    )?;

    // A bulk load builds the primary key once, after the rows are in: an index build sorts,
    // while row-by-row maintenance in object_id order (random here, the rows come in ra order)
    // touches a random B-tree page per row.
    client.execute("SELECT skycat.ap_object_key($1, false)", &[&schema])?;
    let mut order: Vec<usize> = (0..night.objects.len()).collect();
    order.sort_by(|&a, &b| night.objects[a].ra.total_cmp(&night.objects[b].ra));
    copy_csv(client, &format!("COPY {s}.object (object_id, ra, \"dec\") FROM STDIN (FORMAT csv)"), |w| {
        for &i in &order {
            let o = &night.objects[i];
            writeln!(w, "{},{},{}", o.object_id, f(o.ra), f(o.dec))?;
        }
        Ok(())
    })?;
    client.execute("SELECT skycat.ap_object_key($1, true)", &[&schema])?;
    copy_csv(
        client,
        &format!("COPY {s}.moving_object (moving_object_id, ra, \"dec\") FROM STDIN (FORMAT csv)"),
        |w| {
            for m in &night.moving {
                let (ra, dec) = m.position(night.config.mjd0);
                writeln!(w, "{},{},{}", m.moving_object_id, f(ra), f(dec))?;
            }
            Ok(())
        },
    )?;
    copy_csv(client, &format!("COPY {s}.mops_pred FROM STDIN (FORMAT csv)"), |w| {
        for p in night.predictions.iter().flatten() {
            let (ra_e, dec_e) = (f(p.ra_err_arcsec), f(p.dec_err_arcsec));
            writeln!(w, "{},{},{},{},{ra_e},{dec_e},{}", p.moving_object_id, p.visit, f(p.ra), f(p.dec), f(p.mjd))?;
        }
        Ok(())
    })?;
    copy_csv(client, &format!("COPY {s}.visit (visit, ra, \"dec\", mjd, band) FROM STDIN (FORMAT csv)"), |w| {
        for v in &night.visits {
            writeln!(w, "{},{},{},{},{}", v.visit, f(v.ra), f(v.dec), f(v.mjd), v.band)?;
        }
        Ok(())
    })?;
    client.batch_execute(&format!(
        "CREATE TABLE {s}.sim_dia_source (LIKE {s}.dia_source_new);
         CREATE TABLE {s}.sim_truth (dia_source_id bigint PRIMARY KEY, kind text NOT NULL, truth_id bigint);"
    ))?;
    copy_csv(client, &format!("COPY {s}.sim_dia_source FROM STDIN (FORMAT csv)"), |w| {
        night.sources.iter().flatten().try_for_each(|d| write_dia_source_csv(w, d))
    })?;
    copy_csv(client, &format!("COPY {s}.sim_truth FROM STDIN (FORMAT csv)"), |w| {
        night.sources.iter().flatten().try_for_each(|d| write_truth_csv(w, d))
    })?;
    client.batch_execute(&format!("CREATE INDEX ON {s}.sim_dia_source (visit); ANALYZE {s}.sim_dia_source"))?;
    // As autovacuum would leave them: hint bits set and pages all-visible, so that the first
    // visit of a field does not pay for it.
    client.batch_execute(&format!("VACUUM (ANALYZE) {s}.object, {s}.object_position"))?;
    Ok(night.objects.len() as u64)
}

/// The `skycat_files` server [`exposure_files`] creates for `schema`.
pub fn exposure_server(schema: &str) -> String {
    format!("{schema}_exposure_files")
}

/// Writes the exposure metadata of every visit of `night` under `dir` as image processing
/// would (`visit=<v>/{visit,fpa_exposure,fpa_exposure_to_visit,ccd_exposure,amp_exposure}.parquet`,
/// readable by every OS user, so by the database server on this machine) and configures
/// `schema` to ingest a visit's files at its `ap_post_visit`: a `skycat_files` server
/// [`exposure_server`] rooted at `dir` (re-created), then `skycat.ap_exposure_files`. Returns
/// that function's message. Run it after [`load_night`] and before the night.
pub fn exposure_files(
    client: &mut Client,
    schema: &str,
    night: &Night,
    dir: &std::path::Path,
) -> Result<String, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what} {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| fail("create", &e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| fail("resolve", &e))?;
    skycat_sim::night_parquet::write_exposures(night, &dir, |_| {})
        .map_err(|e| fail("write exposure files under", &e))?;
    make_readable(&dir).map_err(|e| fail("set permissions under", &e))?;
    let root = dir.to_str().ok_or_else(|| format!("{}: not UTF-8", dir.display()))?;
    let server = exposure_server(schema);
    let ddl: String = client
        .query_one(
            "SELECT format('DROP SERVER IF EXISTS %1$I CASCADE;
                            CREATE SERVER %1$I FOREIGN DATA WRAPPER skycat_files OPTIONS (root %2$L)', $1::text, $2::text)",
            &[&server, &root],
        )
        .and_then(|r| r.try_get(0))
        .map_err(|e| crate::run::describe(&e, "server DDL"))?;
    client.batch_execute(&ddl).map_err(|e| crate::run::describe(&e, &ddl))?;
    let sql = "SELECT skycat.ap_exposure_files($1, $2, $3)";
    client
        .query_one(sql, &[&schema, &server, &root])
        .and_then(|r| r.try_get(0))
        .map_err(|e| crate::run::describe(&e, sql))
}

/// Directories 0755 and files 0644 below `dir` (and `dir` itself), whatever the umask.
fn make_readable(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            make_readable(&path)?;
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

/// Runs a `COPY ... FROM STDIN` fed by `rows`.
fn copy_csv(
    client: &mut Client,
    copy: &str,
    rows: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<u64, postgres::Error> {
    let mut w = client.copy_in(copy)?;
    {
        let mut buf = std::io::BufWriter::with_capacity(1 << 20, &mut w);
        // An I/O error here is a failed COPY stream: `finish` reports the server's view of it.
        let _ = rows(&mut buf).and_then(|()| buf.flush());
    }
    w.finish()
}
