//! Loads a simulated night into a fresh AP schema: the static sky into `object` (sorted by ra,
//! so each dec stripe is physically in ra order and its BRIN index on ra is tight), moving
//! objects, MOPS predictions and visits, and two tables the pipeline itself never reads: the
//! night's DIASources staged per visit (`sim_dia_source`, what the detection pipeline will
//! insert into `dia_source_new` visit by visit) and the truth (`sim_truth`).

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
    client.batch_execute(&format!("VACUUM (ANALYZE) {s}.object"))?;
    Ok(night.objects.len() as u64)
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
