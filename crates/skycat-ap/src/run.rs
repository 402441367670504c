//! Runs a night's visits through the AP procedures, as the nightly driver would: for each
//! visit `ap_prepare_visit`, then the detection pipeline's output into `dia_source_new` (here:
//! copied from `sim_dia_source`), `ap_associate` and `ap_post_visit`.
//!
//! [`Sessions::Three`] is the seed's pipelining: three connections, and in step k prepare(k+1),
//! associate(k) and post(k-1) run at the same time; a barrier ends each step (the next
//! visit's detections are not there before its exposure is). [`Sessions::One`] runs the same
//! calls one after another; both must give the same database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

use postgres::{Client, NoTls};

use crate::ident;
use crate::plot::VisitLatency;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sessions {
    One,
    Three,
}

/// One field of the night: visit id and pointing.
#[derive(Clone, Copy, Debug)]
pub struct Pointing {
    pub visit: i64,
    pub ra: f64,
    pub dec: f64,
}

/// The AP phases, as reported to the progress callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Prepare,
    Associate,
    Post,
}

/// What a night took: wall time, and per pipeline step (three sessions) or per visit (one
/// session) the wall time of that step: the cycle the telescope's cadence must beat.
#[derive(Debug, Clone)]
pub struct NightTiming {
    pub wall_s: f64,
    pub step_s: Vec<f64>,
}

/// The visits of `schema` in visit order.
pub fn pointings(client: &mut Client, schema: &str) -> Result<Vec<Pointing>, postgres::Error> {
    let rows = client.query(&format!("SELECT visit, ra, \"dec\" FROM {}.visit ORDER BY visit", ident(schema)), &[])?;
    Ok(rows.iter().map(|r| Pointing { visit: r.get(0), ra: r.get(1), dec: r.get(2) }).collect())
}

/// Runs `visits` through the AP procedures of `schema`, calling `progress(phase, visit)` after
/// each call. The night is opened with `ap_prepare_night` and closed with `ap_post_night`.
pub fn run_night(
    dsn: &str,
    schema: &str,
    night: &str,
    visits: &[Pointing],
    sessions: Sessions,
    progress: &(dyn Fn(Phase, i64) + Sync),
) -> Result<NightTiming, String> {
    let mut main = connect(dsn)?;
    call(&mut main, "CALL skycat.ap_prepare_night($1, $2::text::date)", schema, &[&night])?;
    let t0 = Instant::now();
    let step_s = match sessions {
        Sessions::One => {
            let mut steps = Vec::with_capacity(visits.len());
            for p in visits {
                let t = Instant::now();
                run_visit(&mut main, schema, p, progress)?;
                steps.push(t.elapsed().as_secs_f64());
            }
            steps
        }
        Sessions::Three => three_sessions(dsn, schema, visits, progress)?,
    };
    let wall_s = t0.elapsed().as_secs_f64();
    call(&mut main, "CALL skycat.ap_post_night($1, $2::text::date)", schema, &[&night])?;
    Ok(NightTiming { wall_s, step_s })
}

fn three_sessions(
    dsn: &str,
    schema: &str,
    visits: &[Pointing],
    progress: &(dyn Fn(Phase, i64) + Sync),
) -> Result<Vec<f64>, String> {
    let n = visits.len();
    let barrier = Barrier::new(3);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let step_s: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    // Phase p of step k works on visit k - offset(p): prepare 0, associate 1, post 2.
    let phases = [(Phase::Prepare, 0usize), (Phase::Associate, 1), (Phase::Post, 2)];
    std::thread::scope(|scope| {
        for (phase, offset) in phases {
            let (barrier, failed, first_error, step_s) = (&barrier, &failed, &first_error, &step_s);
            scope.spawn(move || {
                let mut client = match connect(dsn) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        first_error.lock().unwrap().get_or_insert(e);
                        None
                    }
                };
                let mut t = Instant::now();
                for step in 0..n + 2 {
                    if let (Some(c), Some(p)) = (client.as_mut(), step.checked_sub(offset).and_then(|k| visits.get(k)))
                    {
                        if !failed.load(Ordering::SeqCst) {
                            match run_phase(c, schema, phase, p) {
                                Ok(()) => progress(phase, p.visit),
                                Err(e) => {
                                    failed.store(true, Ordering::SeqCst);
                                    first_error.lock().unwrap().get_or_insert(e);
                                }
                            }
                        }
                    }
                    // Every thread waits here, failed or not, so no thread is left waiting alone.
                    if barrier.wait().is_leader() {
                        step_s.lock().unwrap().push(t.elapsed().as_secs_f64());
                    }
                    t = Instant::now();
                }
            });
        }
    });
    match first_error.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(step_s.into_inner().unwrap()),
    }
}

/// The three phases of one visit, one after another in one session (`progress` after each).
pub fn run_visit(
    client: &mut Client,
    schema: &str,
    p: &Pointing,
    progress: &(dyn Fn(Phase, i64) + Sync),
) -> Result<(), String> {
    for phase in [Phase::Prepare, Phase::Associate, Phase::Post] {
        run_phase(client, schema, phase, p)?;
        progress(phase, p.visit);
    }
    Ok(())
}

/// One procedure call for one visit (prepare also delivers the visit's DIASources into
/// `dia_source_new`, in its own transaction after the prepare, as the detection pipeline would).
pub fn run_phase(client: &mut Client, schema: &str, phase: Phase, p: &Pointing) -> Result<(), String> {
    match phase {
        Phase::Prepare => {
            call(client, "CALL skycat.ap_prepare_visit($1, $2, $3, $4)", schema, &[&p.visit, &p.ra, &p.dec])?;
            let s = ident(schema);
            let sql = format!("INSERT INTO {s}.dia_source_new SELECT * FROM {s}.sim_dia_source WHERE visit = $1");
            client.execute(&sql, &[&p.visit]).map(|_| ()).map_err(|e| describe(&e, &sql))
        }
        Phase::Associate => call(client, "CALL skycat.ap_associate($1, $2)", schema, &[&p.visit]),
        Phase::Post => call(client, "CALL skycat.ap_post_visit($1, $2)", schema, &[&p.visit]),
    }
}

/// Per-visit phase latencies from `visit_log` (what each procedure measured itself, lock waits
/// included), in visit order.
pub fn latencies(client: &mut Client, schema: &str) -> Result<Vec<VisitLatency>, postgres::Error> {
    let rows = client.query(
        &format!(
            "SELECT visit, max(n_sources) FILTER (WHERE phase = 'associate')::int8,
                    max(extract(epoch FROM finished_at - started_at)) FILTER (WHERE phase = 'prepare')::float8,
                    max(extract(epoch FROM finished_at - started_at)) FILTER (WHERE phase = 'associate')::float8,
                    max(extract(epoch FROM finished_at - started_at)) FILTER (WHERE phase = 'post')::float8
               FROM {}.visit_log GROUP BY visit ORDER BY visit",
            ident(schema)
        ),
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| VisitLatency {
            visit: r.get(0),
            n_sources: r.get::<_, Option<i64>>(1).unwrap_or(0),
            prepare_s: r.get::<_, Option<f64>>(2).unwrap_or(f64::NAN),
            associate_s: r.get::<_, Option<f64>>(3).unwrap_or(f64::NAN),
            post_s: r.get::<_, Option<f64>>(4).unwrap_or(f64::NAN),
        })
        .collect())
}

pub fn connect(dsn: &str) -> Result<Client, String> {
    Client::connect(dsn, NoTls).map_err(|e| format!("connect to {dsn}: {e}"))
}

fn call(
    client: &mut Client,
    sql: &str,
    schema: &str,
    args: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<(), String> {
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&schema];
    params.extend_from_slice(args);
    client.execute(sql, &params).map(|_| ()).map_err(|e| describe(&e, sql))
}

/// The server's message (and SQLSTATE) of a failed statement.
pub fn describe(e: &postgres::Error, sql: &str) -> String {
    match e.as_db_error() {
        Some(db) => format!("{sql}: {} ({})", db.message(), db.code().code()),
        None => format!("{sql}: {e}"),
    }
}
