//! Calibration against fixtures produced by independent implementations
//! (tests/fixtures/gen_calibration.py): astropy.wcs for TAN-SIP pixel <-> sky and the
//! pixel -> sky Jacobian, numpy's chebval2d for afw-style Chebyshev fields.

use std::path::PathBuf;

use skycat_core::photometry::ChebyshevField;
use skycat_core::sphere;
use skycat_core::wcs::Wcs;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/calibration").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rows(name: &str) -> Vec<Vec<String>> {
    let out: Vec<Vec<String>> = fixture(name)
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert!(out.len() > 100, "fixture {name} is too small");
    out
}

fn f(s: &str) -> f64 {
    s.parse().unwrap()
}

fn headers() -> Vec<Wcs> {
    let v: serde_json::Value = serde_json::from_str(&fixture("wcs_headers.json")).unwrap();
    v.as_array().unwrap().iter().map(|h| Wcs::from_json(&h.to_string()).unwrap()).collect()
}

#[test]
fn pixel_to_sky_matches_astropy_to_1e9_degree() {
    let ws = headers();
    let mut worst = 0.0f64;
    for r in rows("wcs_pixel_to_sky.csv") {
        let w = &ws[r[0].parse::<usize>().unwrap()];
        let (ra, dec) = w.pixel_to_sky(f(&r[1]), f(&r[2]));
        let err_deg = sphere::sep_arcsec(ra, dec, f(&r[3]), f(&r[4])) / 3600.0;
        worst = worst.max(err_deg);
        assert!(err_deg < 1e-9, "{r:?}: got ({ra}, {dec}), {err_deg:e} degree off");
    }
    println!("worst pixel_to_sky difference from astropy: {worst:e} degree");
}

#[test]
fn sky_to_pixel_matches_astropy_and_round_trips() {
    let ws = headers();
    let mut worst = 0.0f64;
    for r in rows("wcs_sky_to_pixel.csv") {
        let w = &ws[r[0].parse::<usize>().unwrap()];
        let (x, y) = w.sky_to_pixel(f(&r[1]), f(&r[2]));
        let err = (x - f(&r[3])).abs().max((y - f(&r[4])).abs());
        worst = worst.max(err);
        assert!(err < 1e-6, "{r:?}: got ({x}, {y})");
    }
    println!("worst sky_to_pixel difference from astropy: {worst:e} pixel");
    // and the exact round trip from the pixel side
    for r in rows("wcs_pixel_to_sky.csv") {
        let w = &ws[r[0].parse::<usize>().unwrap()];
        let (x, y) = w.sky_to_pixel(f(&r[3]), f(&r[4]));
        assert!((x - f(&r[1])).abs() < 1e-6 && (y - f(&r[2])).abs() < 1e-6, "{r:?}: got ({x}, {y})");
    }
}

#[test]
fn jacobian_matches_finite_differences_of_astropy() {
    let ws = headers();
    for r in rows("wcs_pixel_to_sky.csv") {
        let w = &ws[r[0].parse::<usize>().unwrap()];
        let j = w.jacobian_arcsec(f(&r[1]), f(&r[2]));
        let expect = [[f(&r[5]), f(&r[6])], [f(&r[7]), f(&r[8])]];
        for a in 0..2 {
            for b in 0..2 {
                // entries are ~0.2 arcsec/pixel; the finite difference is good to ~1e-8
                assert!((j[a][b] - expect[a][b]).abs() < 1e-6, "{r:?}: J[{a}][{b}] = {}", j[a][b]);
            }
        }
        // and the covariance it propagates: an isotropic 0.1 px error stays 0.02 arcsec-ish
        let (ra_err, dec_err, cov) = w.pixel_to_sky_cov(f(&r[1]), f(&r[2]), 0.1, 0.1, 0.0);
        let var = |row: [f64; 2]| 0.01 * (row[0] * row[0] + row[1] * row[1]);
        assert!((ra_err - var(expect[0]).sqrt()).abs() < 1e-7);
        assert!((dec_err - var(expect[1]).sqrt()).abs() < 1e-7);
        assert!((cov - 0.01 * (expect[0][0] * expect[1][0] + expect[0][1] * expect[1][1])).abs() < 1e-8);
    }
}

#[test]
fn chebyshev_fields_match_numpy() {
    for r in rows("chebyshev.csv") {
        let bbox = [0, 1, 2, 3].map(|k| r[k].parse::<i32>().unwrap());
        let (nx, ny) = (r[4].parse().unwrap(), r[5].parse().unwrap());
        let coefficients = r[6].split(' ').map(f).collect();
        let field = ChebyshevField::new(bbox, nx, ny, coefficients).unwrap();
        let got = field.evaluate(f(&r[7]), f(&r[8]));
        assert!((got - f(&r[9])).abs() < 1e-12 * f(&r[9]).abs().max(1.0), "{r:?}: got {got}");
    }
}
