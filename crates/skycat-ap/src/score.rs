//! Scores a night against the simulator's truth (`sim_truth`, written by [`crate::load`]).
//! The expected answer per DIASource: a static object's detection belongs to that object; a
//! transient's detections all belong to the object created from its first detection (LSST's
//! rule: the new object's id is that DIASource's id); a moving object's detection goes to its
//! moving object; an artefact is junk.

use postgres::Client;

use crate::ident;

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// DIASources of the visits associated so far, rows in dia_source for them, distinct ids.
    pub n_truth: i64,
    pub n_persisted: i64,
    pub n_distinct: i64,
    /// DIASources whose truth is an object (static or transient), and how many got exactly it.
    pub n_object_truth: i64,
    pub n_object_correct: i64,
    /// DIASources given some object (matched or new).
    pub n_object_assigned: i64,
    pub n_moving_truth: i64,
    pub n_moving_correct: i64,
    pub n_artefact_truth: i64,
    pub n_artefact_junk: i64,
}

impl Score {
    /// Correct object associations over DIASources whose truth is an object.
    pub fn completeness(&self) -> f64 {
        ratio(self.n_object_correct, self.n_object_truth)
    }
    /// Correct object associations over DIASources given an object.
    pub fn purity(&self) -> f64 {
        ratio(self.n_object_correct, self.n_object_assigned)
    }
    pub fn moving_correct(&self) -> f64 {
        ratio(self.n_moving_correct, self.n_moving_truth)
    }
    pub fn artefacts_junk(&self) -> f64 {
        ratio(self.n_artefact_junk, self.n_artefact_truth)
    }
    /// Lost DIASources (in the truth, not in dia_source) and duplicated rows.
    pub fn lost(&self) -> i64 {
        self.n_truth - self.n_distinct
    }
    pub fn duplicated(&self) -> i64 {
        self.n_persisted - self.n_distinct
    }
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Scores the visits of `schema` that have been associated.
pub fn score(client: &mut Client, schema: &str) -> Result<Score, postgres::Error> {
    let s = ident(schema);
    let row = client.query_one(
        &format!(
            "WITH run AS (SELECT visit FROM {s}.visit_log WHERE phase = 'associate'),
                  truth AS (
                    SELECT t.dia_source_id, t.kind,
                           CASE t.kind WHEN 'object' THEN t.truth_id
                                       WHEN 'transient' THEN min(t.dia_source_id) OVER (PARTITION BY t.kind, t.truth_id)
                           END AS want_object,
                           CASE WHEN t.kind = 'moving' THEN t.truth_id END AS want_moving
                      FROM {s}.sim_truth t JOIN {s}.sim_dia_source n USING (dia_source_id)
                     WHERE n.visit IN (SELECT visit FROM run)),
                  got AS (SELECT dia_source_id, object_id, moving_object_id, route FROM {s}.dia_source
                           WHERE visit IN (SELECT visit FROM run)),
                  one AS (SELECT DISTINCT ON (dia_source_id) * FROM got)
             SELECT (SELECT count(*) FROM truth), (SELECT count(*) FROM got), (SELECT count(*) FROM one),
                    count(*) FILTER (WHERE t.want_object IS NOT NULL),
                    count(*) FILTER (WHERE g.object_id = t.want_object),
                    count(*) FILTER (WHERE g.object_id IS NOT NULL),
                    count(*) FILTER (WHERE t.kind = 'moving'),
                    count(*) FILTER (WHERE g.moving_object_id = t.want_moving),
                    count(*) FILTER (WHERE t.kind = 'artefact'),
                    count(*) FILTER (WHERE t.kind = 'artefact' AND g.route = 'junk')
               FROM truth t LEFT JOIN one g USING (dia_source_id)"
        ),
        &[],
    )?;
    Ok(Score {
        n_truth: row.get(0),
        n_persisted: row.get(1),
        n_distinct: row.get(2),
        n_object_truth: row.get(3),
        n_object_correct: row.get(4),
        n_object_assigned: row.get(5),
        n_moving_truth: row.get(6),
        n_moving_correct: row.get(7),
        n_artefact_truth: row.get(8),
        n_artefact_junk: row.get(9),
    })
}

/// Candidate pairs checked by brute force: for every associated visit, each non-junk DIASource
/// against every object that existed before the visit (static objects, and objects created by
/// earlier visits: their ids are DIASource ids, `visit * 1e6 + k` in the simulator) within the
/// match radius, computed with `sep_arcsec` on a dec-sorted copy, compared with
/// `dia_source_match`. Returns (pairs expected, missing from dia_source_match, extra in it).
pub fn check_pairs(client: &mut Client, schema: &str) -> Result<(i64, i64, i64), postgres::Error> {
    let s = ident(schema);
    client.batch_execute(&format!(
        "DROP TABLE IF EXISTS pg_temp.ap_objects;
         CREATE TEMP TABLE ap_objects AS SELECT object_id, ra, \"dec\" FROM {s}.object;
         CREATE INDEX ON ap_objects (\"dec\");
         ANALYZE ap_objects;"
    ))?;
    let row = client.query_one(
        &format!(
            "WITH r AS (SELECT value::float8 AS arcsec FROM {s}.policy WHERE key = 'match_radius_arcsec'),
                  expected AS (
                    SELECT n.visit, n.dia_source_id, o.object_id
                      FROM {s}.sim_dia_source n
                      JOIN {s}.source_classification c ON c.class_id = n.class_id AND c.route <> 'junk'
                      CROSS JOIN r
                      JOIN ap_objects o ON o.\"dec\" BETWEEN n.\"dec\" - r.arcsec / 3600 AND n.\"dec\" + r.arcsec / 3600
                                       AND o.object_id < n.visit * 1000000
                     WHERE n.visit IN (SELECT visit FROM {s}.visit_log WHERE phase = 'associate')
                       AND skycat.sep_arcsec(n.ra, n.\"dec\", o.ra, o.\"dec\") <= r.arcsec),
                  got AS (SELECT visit, dia_source_id, object_id FROM {s}.dia_source_match)
             SELECT (SELECT count(*) FROM expected),
                    (SELECT count(*) FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM got) m),
                    (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM expected) x)"
        ),
        &[],
    )?;
    Ok((row.get(0), row.get(1), row.get(2)))
}
