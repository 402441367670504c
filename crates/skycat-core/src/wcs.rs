//! TAN and TAN-SIP world coordinate systems (FITS WCS papers I/II and the SIP convention,
//! Shupe et al. 2005), pixel <-> sky, and the local Jacobian for centroid errors.
//!
//! Pixels are 0-based (LSST convention, FITS pixel = x + 1). The pipeline is
//! `u = x + 1 - CRPIX1`, `U = u + A(u, v)`, `(xi, eta) = CD (U, V)` (intermediate world
//! coordinates in degrees), then the gnomonic projection about CRVAL with the native
//! longitude of the celestial pole LONPOLE (default 180 degrees).
//!
//! The gnomonic step is done with unit vectors rather than the textbook trigonometric
//! formulas: with `c` the unit vector of CRVAL and `ex`, `ey` the (LONPOLE-rotated) east and
//! north unit vectors there, the sky position is the direction of `c + xi ex + eta ey`
//! (xi, eta in radians). That is exact, has no special cases at the poles or RA 0/360, and
//! needs no trigonometry per row except the final atan2 pair; the inverse is
//! `xi = p.ex / p.c`, `eta = p.ey / p.c`.
//!
//! A header is parsed once ([`Wcs::from_json`]) and stored in the compact binary form of
//! [`Wcs::encode`]; per-row calls decode that (no JSON).

use std::f64::consts::PI;

use serde_json::{Map, Value};

use crate::encoding::{bytes_to_f64s, f64s_to_bytes, json_number};
use crate::sphere::UnitVector;

const DEG: f64 = PI / 180.0;
const ARCSEC_PER_RAD: f64 = 180.0 * 3600.0 / PI;

/// The highest SIP order accepted (LSST fits use 2-5; higher orders are numerically useless).
pub const MAX_SIP_ORDER: usize = 9;

/// A 2-D polynomial `sum_{p+q <= order} c[p][q] u^p v^q` (a SIP A, B, AP or BP block).
#[derive(Debug, Clone, PartialEq)]
pub struct Poly {
    pub order: usize,
    /// Dense (order + 1)^2, index `p * (order + 1) + q`; terms with p + q > order are 0.
    pub c: Vec<f64>,
}

impl Poly {
    #[inline]
    fn coef(&self, p: usize, q: usize) -> f64 {
        self.c[p * (self.order + 1) + q]
    }

    /// Value at (u, v) by Horner's rule in v inside Horner's rule in u.
    #[inline]
    pub fn eval(&self, u: f64, v: f64) -> f64 {
        let n = self.order + 1;
        let mut acc = 0.0;
        for p in (0..n).rev() {
            let row = &self.c[p * n..p * n + n - p];
            let mut r = 0.0;
            for &c in row.iter().rev() {
                r = r * v + c;
            }
            acc = acc * u + r;
        }
        acc
    }

    /// Value and partial derivatives (d/du, d/dv) at (u, v).
    pub fn eval_grad(&self, u: f64, v: f64) -> (f64, f64, f64) {
        let n = self.order + 1;
        let (mut f, mut fu, mut fv) = (0.0, 0.0, 0.0);
        let mut up = 1.0; // u^p
        let mut up1 = 0.0; // p u^(p-1)
        for p in 0..n {
            let (mut vq, mut vq1) = (1.0, 0.0); // v^q, q v^(q-1)
            for q in 0..n - p {
                let c = self.coef(p, q);
                f += c * up * vq;
                fu += c * up1 * vq;
                fv += c * up * vq1;
                vq1 = (q + 1) as f64 * vq;
                vq *= v;
            }
            up1 = (p + 1) as f64 * up;
            up *= u;
        }
        (f, fu, fv)
    }
}

/// A parsed TAN or TAN-SIP WCS.
#[derive(Debug, Clone, PartialEq)]
pub struct Wcs {
    pub crpix: [f64; 2],
    pub crval: [f64; 2],
    /// CD matrix (degrees per pixel), `cd[i][j]` = CD(i+1)_(j+1).
    pub cd: [[f64; 2]; 2],
    pub lonpole: f64,
    /// Forward SIP A and B.
    pub sip: Option<(Poly, Poly)>,
    /// Inverse SIP AP and BP (a starting point for the inversion; refined by Newton's method).
    pub sip_inv: Option<(Poly, Poly)>,
    // Derived: sky direction = c + U kx + V ky (U, V: distortion-corrected pixel offsets).
    c: [f64; 3],
    ex: [f64; 3],
    ey: [f64; 3],
    kx: [f64; 3],
    ky: [f64; 3],
    /// Inverse of CD in radians: (U, V) = cd_inv_rad (xi, eta).
    cd_inv_rad: [[f64; 2]; 2],
}

/// A parse error: the keyword at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct WcsError {
    pub keyword: String,
    pub detail: String,
}

impl std::fmt::Display for WcsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.keyword, self.detail)
    }
}

fn bad(keyword: &str, detail: impl Into<String>) -> WcsError {
    WcsError { keyword: keyword.to_string(), detail: detail.into() }
}

#[inline]
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
fn axpy(a: f64, x: [f64; 3], y: [f64; 3]) -> [f64; 3] {
    [a * x[0] + y[0], a * x[1] + y[1], a * x[2] + y[2]]
}

/// (ra, dec) in degrees, ra in [0, 360), of a (not necessarily unit) direction.
#[inline]
fn direction_to_radec(q: [f64; 3]) -> (f64, f64) {
    UnitVector { x: q[0], y: q[1], z: q[2] }.to_radec()
}

#[inline]
fn radec_to_unit(ra: f64, dec: f64) -> [f64; 3] {
    let u = UnitVector::from_radec(ra, dec);
    [u.x, u.y, u.z]
}

/// Local east and north unit vectors at (ra, dec).
#[inline]
fn east_north(ra: f64, dec: f64) -> ([f64; 3], [f64; 3]) {
    let (sa, ca) = (ra * DEG).sin_cos();
    let (sd, cd) = (dec * DEG).sin_cos();
    ([-sa, ca, 0.0], [-sd * ca, -sd * sa, cd])
}

impl Wcs {
    /// Builds a WCS from its parameters, validating them and deriving the per-row constants.
    pub fn new(
        crpix: [f64; 2],
        crval: [f64; 2],
        cd: [[f64; 2]; 2],
        lonpole: f64,
        sip: Option<(Poly, Poly)>,
        sip_inv: Option<(Poly, Poly)>,
    ) -> Result<Self, WcsError> {
        for (k, v) in [("CRPIX1", crpix[0]), ("CRPIX2", crpix[1]), ("CRVAL1", crval[0]), ("LONPOLE", lonpole)] {
            if !v.is_finite() {
                return Err(bad(k, "must be a finite number"));
            }
        }
        if !(crval[1].is_finite() && (-90.0..=90.0).contains(&crval[1])) {
            return Err(bad("CRVAL2", "must be a declination in [-90, 90]"));
        }
        if cd.iter().flatten().any(|v| v.abs() > 180.0) {
            return Err(bad("CD1_1", "(the CD matrix, or CDELTi x PCi_j) must be at most 180 degrees per pixel"));
        }
        let det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
        if !det.is_finite() || det == 0.0 {
            return Err(bad("CD1_1", "(the CD matrix, or CDELTi x PCi_j) must be finite and invertible"));
        }
        let (e0, n0) = east_north(crval[0], crval[1]);
        // FITS: the native longitude phi relates to the textbook gnomonic with phi_p = 180;
        // another LONPOLE rotates the intermediate coordinates by 180 - LONPOLE.
        let (s, co) = ((180.0 - lonpole) * DEG).sin_cos();
        let ex = [co * e0[0] + s * n0[0], co * e0[1] + s * n0[1], co * e0[2] + s * n0[2]];
        let ey = [-s * e0[0] + co * n0[0], -s * e0[1] + co * n0[1], -s * e0[2] + co * n0[2]];
        let m = [[cd[0][0] * DEG, cd[0][1] * DEG], [cd[1][0] * DEG, cd[1][1] * DEG]];
        let kx = axpy(m[0][0], ex, [m[1][0] * ey[0], m[1][0] * ey[1], m[1][0] * ey[2]]);
        let ky = axpy(m[0][1], ex, [m[1][1] * ey[0], m[1][1] * ey[1], m[1][1] * ey[2]]);
        let det_r = det * DEG * DEG;
        let cd_inv_rad = [[m[1][1] / det_r, -m[0][1] / det_r], [-m[1][0] / det_r, m[0][0] / det_r]];
        // A determinant that underflows (e.g. a subnormal PC element) leaves no usable
        // inverse: sky_to_pixel would return infinities.
        if cd_inv_rad.iter().flatten().chain(kx.iter()).chain(ky.iter()).any(|v| !v.is_finite()) || det_r == 0.0 {
            return Err(bad("CD1_1", "(the CD matrix, or CDELTi x PCi_j) is too close to singular to invert"));
        }
        Ok(Wcs {
            crpix,
            crval,
            cd,
            lonpole,
            sip,
            sip_inv,
            c: radec_to_unit(crval[0], crval[1]),
            ex,
            ey,
            kx,
            ky,
            cd_inv_rad,
        })
    }

    /// Distortion-corrected offsets (U, V) of 0-based pixel (x, y).
    #[inline]
    fn corrected(&self, x: f64, y: f64) -> (f64, f64) {
        let u = x + 1.0 - self.crpix[0];
        let v = y + 1.0 - self.crpix[1];
        match &self.sip {
            None => (u, v),
            Some((a, b)) => (u + a.eval(u, v), v + b.eval(u, v)),
        }
    }

    #[inline]
    fn direction(&self, uu: f64, vv: f64) -> [f64; 3] {
        let m = uu.abs().max(vv.abs());
        if m > 1e100 {
            // Far out on the tangent plane (the direction tends to 90 degrees from CRVAL):
            // scaled down so the vector cannot overflow; only its direction matters.
            let c = [self.c[0] / m, self.c[1] / m, self.c[2] / m];
            return axpy(vv / m, self.ky, axpy(uu / m, self.kx, c));
        }
        axpy(vv, self.ky, axpy(uu, self.kx, self.c))
    }

    /// Sky position (ra in [0, 360), dec) in degrees of 0-based pixel (x, y). NaN in, NaN out.
    #[inline]
    pub fn pixel_to_sky(&self, x: f64, y: f64) -> (f64, f64) {
        let (uu, vv) = self.corrected(x, y);
        if !(uu.is_finite() && vv.is_finite()) {
            return (f64::NAN, f64::NAN);
        }
        direction_to_radec(self.direction(uu, vv))
    }

    /// 0-based pixel of a sky position; NaN for positions 90 degrees or more from CRVAL (not
    /// on the tangent plane), for NaN input, or if the SIP inversion does not converge.
    pub fn sky_to_pixel(&self, ra: f64, dec: f64) -> (f64, f64) {
        let nan = (f64::NAN, f64::NAN);
        if !(ra.is_finite() && dec.is_finite()) {
            return nan;
        }
        let p = radec_to_unit(ra, dec);
        let pc = dot(p, self.c);
        if pc <= 0.0 {
            return nan;
        }
        let (xi, eta) = (dot(p, self.ex) / pc, dot(p, self.ey) / pc);
        let m = &self.cd_inv_rad;
        let uu = m[0][0] * xi + m[0][1] * eta;
        let vv = m[1][0] * xi + m[1][1] * eta;
        let (u, v) = match &self.sip {
            None => (uu, vv),
            Some((a, b)) => match self.invert_sip(a, b, uu, vv) {
                Some(uv) => uv,
                None => return nan,
            },
        };
        (u + self.crpix[0] - 1.0, v + self.crpix[1] - 1.0)
    }

    /// Solves u + A(u, v) = U, v + B(u, v) = V by Newton's method from the AP/BP estimate
    /// (or from (U, V) when the header has no inverse), to 1e-10 pixel.
    fn invert_sip(&self, a: &Poly, b: &Poly, uu: f64, vv: f64) -> Option<(f64, f64)> {
        let (mut u, mut v) = match &self.sip_inv {
            Some((ap, bp)) => (uu + ap.eval(uu, vv), vv + bp.eval(uu, vv)),
            None => (uu, vv),
        };
        for _ in 0..50 {
            let (f, fu, fv) = a.eval_grad(u, v);
            let (g, gu, gv) = b.eval_grad(u, v);
            let (r1, r2) = (u + f - uu, v + g - vv);
            let (j11, j12, j21, j22) = (1.0 + fu, fv, gu, 1.0 + gv);
            let det = j11 * j22 - j12 * j21;
            let du = (j22 * r1 - j12 * r2) / det;
            let dv = (j11 * r2 - j21 * r1) / det;
            u -= du;
            v -= dv;
            if !(u.is_finite() && v.is_finite()) {
                return None;
            }
            if du.abs().max(dv.abs()) < 1e-10 {
                return Some((u, v));
            }
        }
        None
    }

    /// Propagates a centroid covariance (pixels^2) to the sky through the local Jacobian, as
    /// LSST's CentroidTransform does: returns (ra_err, dec_err, ra_dec_cov) in arcsec and
    /// arcsec^2, where the RA component is the on-sky offset along the RA direction (the
    /// tangent-plane "east" offset, i.e. d(ra) cos(dec)).
    pub fn pixel_to_sky_cov(&self, x: f64, y: f64, x_err: f64, y_err: f64, xy_cov: f64) -> (f64, f64, f64) {
        let j = self.jacobian_arcsec(x, y);
        let (sxx, syy, sxy) = (x_err * x_err, y_err * y_err, xy_cov);
        // Sigma_sky = J Sigma J^T
        let a = j[0][0] * sxx + j[0][1] * sxy;
        let b = j[0][0] * sxy + j[0][1] * syy;
        let c = j[1][0] * sxx + j[1][1] * sxy;
        let d = j[1][0] * sxy + j[1][1] * syy;
        let var_ra = a * j[0][0] + b * j[0][1];
        let var_dec = c * j[1][0] + d * j[1][1];
        let cov = a * j[1][0] + b * j[1][1];
        // A degenerate covariance (|xy_cov| = x_err y_err) can round a variance just below 0.
        let sqrt0 = |v: f64| if v < 0.0 { 0.0 } else { v.sqrt() };
        (sqrt0(var_ra), sqrt0(var_dec), cov)
    }

    /// d(east, north offsets in arcsec) / d(x, y) at pixel (x, y).
    pub fn jacobian_arcsec(&self, x: f64, y: f64) -> [[f64; 2]; 2] {
        let u = x + 1.0 - self.crpix[0];
        let v = y + 1.0 - self.crpix[1];
        // d(U, V) / d(x, y)
        let (uu, vv, d) = match &self.sip {
            None => (u, v, [[1.0, 0.0], [0.0, 1.0]]),
            Some((a, b)) => {
                let (f, fu, fv) = a.eval_grad(u, v);
                let (g, gu, gv) = b.eval_grad(u, v);
                (u + f, v + g, [[1.0 + fu, fv], [gu, 1.0 + gv]])
            }
        };
        let q = self.direction(uu, vv);
        let norm = dot(q, q).sqrt();
        let (ra, dec) = direction_to_radec(q);
        let (e, n) = east_north(ra, dec);
        // d(unit direction)/dU = (I - p p^T) kx / |q|; projecting on e and n drops the p term.
        let s = ARCSEC_PER_RAD / norm;
        let a = [[dot(e, self.kx) * s, dot(e, self.ky) * s], [dot(n, self.kx) * s, dot(n, self.ky) * s]];
        [
            [a[0][0] * d[0][0] + a[0][1] * d[1][0], a[0][0] * d[0][1] + a[0][1] * d[1][1]],
            [a[1][0] * d[0][0] + a[1][1] * d[1][0], a[1][0] * d[0][1] + a[1][1] * d[1][1]],
        ]
    }

    /// Parses a JSON object of FITS header keywords. Unknown keywords (NAXIS, DATE-OBS, ...)
    /// are ignored, so a whole header can be passed; numbers may be JSON numbers or strings.
    pub fn from_json(text: &str) -> Result<Self, WcsError> {
        let v: Value = serde_json::from_str(text).map_err(|e| bad("header", format!("is not a JSON object ({e})")))?;
        let obj = v.as_object().ok_or_else(|| bad("header", "is not a JSON object of FITS keywords"))?;
        Self::from_keywords(obj)
    }

    pub fn from_keywords(obj: &Map<String, Value>) -> Result<Self, WcsError> {
        let get = |k: &str| obj.get(k).filter(|v| !v.is_null());
        let num = |k: &str| -> Result<Option<f64>, WcsError> {
            match get(k) {
                None => Ok(None),
                Some(v) => match json_number(v) {
                    Some(x) if x.is_finite() => Ok(Some(x)),
                    _ => Err(bad(k, format!("must be a finite number, got {v}"))),
                },
            }
        };
        let req = |k: &str| -> Result<f64, WcsError> { num(k)?.ok_or_else(|| bad(k, "is missing")) };
        let text = |k: &str| -> Result<Option<String>, WcsError> {
            match get(k) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(v) => Err(bad(k, format!("must be a string, got {v}"))),
            }
        };
        let ctype1 = text("CTYPE1")?.ok_or_else(|| bad("CTYPE1", "is missing"))?;
        let ctype2 = text("CTYPE2")?.ok_or_else(|| bad("CTYPE2", "is missing"))?;
        let sip1 = match ctype1.as_str() {
            "RA---TAN" => false,
            "RA---TAN-SIP" => true,
            other => {
                return Err(bad(
                    "CTYPE1",
                    format!("is \"{other}\", which skycat does not read (it reads RA---TAN and RA---TAN-SIP)"),
                ))
            }
        };
        let sip2 = match ctype2.as_str() {
            "DEC--TAN" => false,
            "DEC--TAN-SIP" => true,
            other => {
                return Err(bad(
                    "CTYPE2",
                    format!("is \"{other}\", which skycat does not read (it reads DEC--TAN and DEC--TAN-SIP)"),
                ))
            }
        };
        if sip1 != sip2 {
            return Err(bad("CTYPE2", format!("is \"{ctype2}\", which does not match CTYPE1 \"{ctype1}\"")));
        }
        for k in ["CUNIT1", "CUNIT2"] {
            if let Some(u) = text(k)? {
                if u != "deg" {
                    return Err(bad(k, format!("is \"{u}\"; only \"deg\" is supported")));
                }
            }
        }
        let crpix = [req("CRPIX1")?, req("CRPIX2")?];
        let crval = [req("CRVAL1")?, req("CRVAL2")?];
        let cd_keys = ["CD1_1", "CD1_2", "CD2_1", "CD2_2"];
        let cd = if cd_keys.iter().any(|k| get(k).is_some()) {
            // FITS: once any CDi_j is present, the missing ones are 0.
            [
                [num("CD1_1")?.unwrap_or(0.0), num("CD1_2")?.unwrap_or(0.0)],
                [num("CD2_1")?.unwrap_or(0.0), num("CD2_2")?.unwrap_or(0.0)],
            ]
        } else {
            let cdelt = [req("CDELT1")?, req("CDELT2")?];
            let pc = if ["PC1_1", "PC1_2", "PC2_1", "PC2_2"].iter().any(|k| get(k).is_some()) {
                [
                    [num("PC1_1")?.unwrap_or(1.0), num("PC1_2")?.unwrap_or(0.0)],
                    [num("PC2_1")?.unwrap_or(0.0), num("PC2_2")?.unwrap_or(1.0)],
                ]
            } else if let Some(rot) = num("CROTA2")? {
                // The old AIPS convention, as FITS paper II section 6.1 converts it.
                let (s, c) = (rot * DEG).sin_cos();
                [[c, -s * cdelt[1] / cdelt[0]], [s * cdelt[0] / cdelt[1], c]]
            } else {
                [[1.0, 0.0], [0.0, 1.0]]
            };
            [[cdelt[0] * pc[0][0], cdelt[0] * pc[0][1]], [cdelt[1] * pc[1][0], cdelt[1] * pc[1][1]]]
        };
        let lonpole = num("LONPOLE")?.unwrap_or(180.0);
        let poly = |name: &str, required: bool| -> Result<Option<Poly>, WcsError> {
            let order_key = format!("{name}_ORDER");
            let order = match num(&order_key)? {
                None if required => return Err(bad(&order_key, "is missing (CTYPE is -SIP)")),
                None => return Ok(None),
                Some(o) => o,
            };
            if o_invalid(order) {
                return Err(bad(&order_key, format!("must be an integer from 0 to {MAX_SIP_ORDER}, got {order}")));
            }
            let order = order as usize;
            let n = order + 1;
            let mut c = vec![0.0; n * n];
            for p in 0..n {
                for q in 0..n - p {
                    if let Some(x) = num(&format!("{name}_{p}_{q}"))? {
                        c[p * n + q] = x;
                    }
                }
            }
            Ok(Some(Poly { order, c }))
        };
        fn o_invalid(o: f64) -> bool {
            o.fract() != 0.0 || !(0.0..=MAX_SIP_ORDER as f64).contains(&o)
        }
        let (sip, sip_inv) = if sip1 {
            let a = poly("A", true)?.unwrap();
            let b = poly("B", true)?.unwrap();
            let inv = match (poly("AP", false)?, poly("BP", false)?) {
                (Some(ap), Some(bp)) => Some((ap, bp)),
                (None, None) => None,
                (Some(_), None) => return Err(bad("BP_ORDER", "is missing (AP_ORDER is given)")),
                (None, Some(_)) => return Err(bad("AP_ORDER", "is missing (BP_ORDER is given)")),
            };
            (Some((a, b)), inv)
        } else {
            if get("A_ORDER").is_some() || get("B_ORDER").is_some() {
                return Err(bad("CTYPE1", format!("is \"{ctype1}\" (no -SIP suffix) but A_ORDER/B_ORDER are given")));
            }
            (None, None)
        };
        Self::new(crpix, crval, cd, lonpole, sip, sip_inv)
    }

    /// The header as JSON: CTYPE, CRPIX, CRVAL, CD (CDELT/PC/CROTA input comes out as CD),
    /// LONPOLE when not 180, and the non-zero SIP coefficients with their orders.
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        let sip = self.sip.is_some();
        m.insert("CTYPE1".into(), Value::from(if sip { "RA---TAN-SIP" } else { "RA---TAN" }));
        m.insert("CTYPE2".into(), Value::from(if sip { "DEC--TAN-SIP" } else { "DEC--TAN" }));
        m.insert("CRPIX1".into(), Value::from(self.crpix[0]));
        m.insert("CRPIX2".into(), Value::from(self.crpix[1]));
        m.insert("CRVAL1".into(), Value::from(self.crval[0]));
        m.insert("CRVAL2".into(), Value::from(self.crval[1]));
        for i in 0..2 {
            for j in 0..2 {
                m.insert(format!("CD{}_{}", i + 1, j + 1), Value::from(self.cd[i][j]));
            }
        }
        if self.lonpole != 180.0 {
            m.insert("LONPOLE".into(), Value::from(self.lonpole));
        }
        let mut put = |name: &str, p: &Poly| {
            m.insert(format!("{name}_ORDER"), Value::from(p.order as i64));
            let n = p.order + 1;
            for i in 0..n {
                for j in 0..n - i {
                    let c = p.c[i * n + j];
                    if c != 0.0 {
                        m.insert(format!("{name}_{i}_{j}"), Value::from(c));
                    }
                }
            }
        };
        if let Some((a, b)) = &self.sip {
            put("A", a);
            put("B", b);
        }
        if let Some((ap, bp)) = &self.sip_inv {
            put("AP", ap);
            put("BP", bp);
        }
        Value::Object(m).to_string()
    }

    /// Compact binary form: little-endian f64s `[1 (format version), CRPIX1, CRPIX2, CRVAL1,
    /// CRVAL2, CD1_1, CD1_2, CD2_1, CD2_2, LONPOLE, A_ORDER, B_ORDER, AP_ORDER, BP_ORDER
    /// (-1 when absent), then the dense coefficient blocks of A, B, AP, BP]`.
    pub fn encode(&self) -> Vec<u8> {
        let order = |p: Option<&Poly>| p.map(|p| p.order as f64).unwrap_or(-1.0);
        let (a, b) = (self.sip.as_ref().map(|s| &s.0), self.sip.as_ref().map(|s| &s.1));
        let (ap, bp) = (self.sip_inv.as_ref().map(|s| &s.0), self.sip_inv.as_ref().map(|s| &s.1));
        let mut v = vec![
            1.0,
            self.crpix[0],
            self.crpix[1],
            self.crval[0],
            self.crval[1],
            self.cd[0][0],
            self.cd[0][1],
            self.cd[1][0],
            self.cd[1][1],
            self.lonpole,
            order(a),
            order(b),
            order(ap),
            order(bp),
        ];
        for p in [a, b, ap, bp].into_iter().flatten() {
            v.extend_from_slice(&p.c);
        }
        f64s_to_bytes(&v)
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let v = bytes_to_f64s(bytes)?;
        if v.len() < 14 || v[0] != 1.0 {
            return None;
        }
        let mut at = 14;
        let mut take = |order: f64| -> Option<Option<Poly>> {
            if order < 0.0 {
                return Some(None);
            }
            // Stored bytes are trusted no further than the text form: orders in range.
            if order.is_nan() || order > MAX_SIP_ORDER as f64 {
                return None;
            }
            let order = order as usize;
            let n = (order + 1) * (order + 1);
            let c = v.get(at..at + n)?.to_vec();
            at += n;
            Some(Some(Poly { order, c }))
        };
        let (a, b, ap, bp) = (take(v[10])?, take(v[11])?, take(v[12])?, take(v[13])?);
        let sip = a.zip(b);
        let sip_inv = ap.zip(bp);
        Wcs::new([v[1], v[2]], [v[3], v[4]], [[v[5], v[6]], [v[7], v[8]]], v[9], sip, sip_inv).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sphere;
    use approx::assert_relative_eq;

    fn lsst_like(order: usize) -> Wcs {
        // 0.2"/px, rotated 30 degrees, x flipped (RA increases to the left).
        let s = 0.2 / 3600.0;
        let (sn, cs) = (30.0 * DEG).sin_cos();
        let cd = [[-s * cs, s * sn], [s * sn, s * cs]];
        let n = order + 1;
        let mut a = vec![0.0; n * n];
        let mut b = vec![0.0; n * n];
        // a few pixels of distortion at the detector edge (u ~ 2000)
        for p in 0..n {
            for q in 0..n - p {
                if p + q >= 2 {
                    let scale = 3.0 / 2000f64.powi((p + q) as i32);
                    a[p * n + q] = scale * (((p * 7 + q * 3) % 5) as f64 - 2.0) / 2.0;
                    b[p * n + q] = scale * (((p * 3 + q * 5) % 7) as f64 - 3.0) / 3.0;
                }
            }
        }
        let sip = if order >= 2 { Some((Poly { order, c: a }, Poly { order, c: b })) } else { None };
        Wcs::new([2036.5, 2000.5], [359.99, -30.0], cd, 180.0, sip, None).unwrap()
    }

    #[test]
    fn crpix_maps_to_crval_and_pixel_scale_is_right() {
        let w = lsst_like(4);
        let (ra, dec) = w.pixel_to_sky(2035.5, 1999.5);
        assert_relative_eq!(ra, 359.99, epsilon = 1e-12);
        assert_relative_eq!(dec, -30.0, epsilon = 1e-12);
        let (ra1, dec1) = w.pixel_to_sky(2036.5, 1999.5);
        // one pixel from CRPIX the distortion is ~1e-6 px: 0.2 arcsec
        assert_relative_eq!(sphere::sep_arcsec(ra, dec, ra1, dec1), 0.2, max_relative = 1e-5);
    }

    #[test]
    fn round_trip_over_a_4k_detector_within_1e6_pixel() {
        for order in [0, 2, 3, 4, 5] {
            let w = lsst_like(order);
            for i in 0..=40 {
                for j in 0..=40 {
                    let (x, y) = (i as f64 * 4072.0 / 40.0 - 0.5, j as f64 * 4000.0 / 40.0 - 0.5);
                    let (ra, dec) = w.pixel_to_sky(x, y);
                    let (x2, y2) = w.sky_to_pixel(ra, dec);
                    assert!((x2 - x).abs() < 1e-6 && (y2 - y).abs() < 1e-6, "order {order} ({x}, {y}) -> ({x2}, {y2})");
                }
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let w = lsst_like(5);
        let (a, _) = w.sip.as_ref().unwrap();
        let (u, v, h) = (1234.5, -987.25, 1e-3);
        let (f, fu, fv) = a.eval_grad(u, v);
        assert_relative_eq!(f, a.eval(u, v), max_relative = 1e-13);
        assert_relative_eq!(fu, (a.eval(u + h, v) - a.eval(u - h, v)) / (2.0 * h), max_relative = 1e-6);
        assert_relative_eq!(fv, (a.eval(u, v + h) - a.eval(u, v - h)) / (2.0 * h), max_relative = 1e-6);
    }

    #[test]
    fn far_side_and_nan_give_nan() {
        let w = lsst_like(0);
        let (x, y) = w.sky_to_pixel(179.99, 30.0);
        assert!(x.is_nan() && y.is_nan());
        let (ra, dec) = w.pixel_to_sky(f64::NAN, 3.0);
        assert!(ra.is_nan() && dec.is_nan());
    }

    #[test]
    fn json_and_binary_round_trips() {
        for order in [0, 3] {
            let w = lsst_like(order);
            assert_eq!(Wcs::from_json(&w.to_json()).unwrap(), w);
            assert_eq!(Wcs::decode(&w.encode()).unwrap(), w);
        }
        let pc = Wcs::from_json(
            r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": "10", "CRPIX2": 20, "CRVAL1": 10,
                "CRVAL2": 20, "CDELT1": -0.001, "CDELT2": 0.002, "PC1_2": 0.5, "NAXIS": 2, "DATE-OBS": "x"}"#,
        )
        .unwrap();
        assert_eq!(pc.cd, [[-0.001, -0.0005], [0.0, 0.002]]);
    }

    #[test]
    fn malformed_headers_name_the_keyword() {
        let ok = r#""CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 1, "CRPIX2": 1,
                    "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1e-4, "CD2_2": 1e-4"#;
        let case = |extra: &str, drop: &str| {
            let mut body = format!("{{{ok}{extra}}}");
            if !drop.is_empty() {
                body = body.replace(drop, "\"IGNORED\"");
            }
            Wcs::from_json(&body).map(|_| ()).unwrap_err().keyword
        };
        assert_eq!(case("", ""), "A_ORDER");
        assert_eq!(case(r#", "A_ORDER": 2"#, ""), "B_ORDER");
        assert_eq!(case(r#", "A_ORDER": 2, "B_ORDER": 2.5"#, ""), "B_ORDER");
        assert_eq!(case(r#", "A_ORDER": 2, "B_ORDER": 2, "A_2_0": "x""#, ""), "A_2_0");
        assert_eq!(case(r#", "A_ORDER": 2, "B_ORDER": 2, "AP_ORDER": 2"#, ""), "BP_ORDER");
        assert_eq!(case(r#", "A_ORDER": 2, "B_ORDER": 2"#, "\"CRPIX2\""), "CRPIX2");
        assert_eq!(case(r#", "A_ORDER": 2, "B_ORDER": 2, "CRVAL2": 91"#, ""), "CRVAL2");
        assert_eq!(Wcs::from_json(r#"{"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV"}"#).unwrap_err().keyword, "CTYPE1");
        assert_eq!(Wcs::from_json("[1, 2]").unwrap_err().keyword, "header");
        assert_eq!(Wcs::from_json("{").unwrap_err().keyword, "header");
    }
}
