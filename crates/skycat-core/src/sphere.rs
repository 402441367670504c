//! Spherical geometry on the celestial sphere: angles, unit vectors, separations,
//! position angles and the distance from a point to a longitude/latitude box.
//!
//! Angles at this level are ICRS degrees unless a name says otherwise (`*_rad`, `*_arcsec`).

pub const ARCSEC_PER_DEG: f64 = 3600.0;
pub const DEG_PER_ARCSEC: f64 = 1.0 / 3600.0;

/// Wraps a right ascension to [0, 360). `-0.0` and values that round to 360 become 0.
pub fn wrap_ra(ra: f64) -> f64 {
    if ra > 0.0 && ra < 360.0 {
        return ra; // the common case, without the cost of fmod
    }
    let r = ra.rem_euclid(360.0);
    // rem_euclid of a tiny negative number rounds up to exactly 360.0.
    if r >= 360.0 || r == 0.0 {
        0.0
    } else {
        r
    }
}

/// Wraps a longitude difference to (-180, 180].
pub fn wrap_delta_ra(d: f64) -> f64 {
    let r = (d + 180.0).rem_euclid(360.0) - 180.0;
    if r <= -180.0 {
        r + 360.0
    } else {
        r
    }
}

/// A point of the unit sphere as a Cartesian vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitVector {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl UnitVector {
    pub fn from_radec(ra: f64, dec: f64) -> Self {
        let (sa, ca) = ra.to_radians().sin_cos();
        let (sd, cd) = dec.to_radians().sin_cos();
        UnitVector { x: cd * ca, y: cd * sa, z: sd }
    }

    /// Back to (ra, dec) degrees, ra in [0, 360). Accepts non-normalised vectors.
    pub fn to_radec(self) -> (f64, f64) {
        let rho = self.x.hypot(self.y);
        let dec = self.z.atan2(rho).to_degrees();
        let ra = if rho == 0.0 { 0.0 } else { wrap_ra(self.y.atan2(self.x).to_degrees()) };
        (ra, dec)
    }

    pub fn dot(self, o: UnitVector) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }

    pub fn cross(self, o: UnitVector) -> UnitVector {
        UnitVector { x: self.y * o.z - self.z * o.y, y: self.z * o.x - self.x * o.z, z: self.x * o.y - self.y * o.x }
    }

    pub fn norm(self) -> f64 {
        (self.x * self.x + self.y * self.y + self.z * self.z).sqrt()
    }

    /// Angle between two vectors in radians, stable at 0 and at pi
    /// (atan2 of |u x v| and u . v rather than acos of the dot product).
    pub fn angle_rad(self, o: UnitVector) -> f64 {
        self.cross(o).norm().atan2(self.dot(o))
    }
}

/// Length of the chord between two unit vectors `angle_rad` apart (clamped to pi).
pub fn chord_of_angle(angle_rad: f64) -> f64 {
    2.0 * (angle_rad.min(std::f64::consts::PI) / 2.0).sin()
}

/// The angle in radians between two unit vectors `chord` apart (the inverse of
/// [`chord_of_angle`]; chords past the diameter give pi).
pub fn angle_of_chord(chord: f64) -> f64 {
    2.0 * (chord / 2.0).clamp(0.0, 1.0).asin()
}

/// Great-circle separation in radians, accurate at every separation.
///
/// Most pairs take the haversine form in the arrangement q3c uses (three sines/cosines, one
/// asin): it is accurate to ~1e-16 rad except near 180 degrees, where asin(sqrt(h)) loses
/// precision as h -> 1. Past ~160 degrees (h > 0.97) Vincenty's formula takes over, which is
/// accurate everywhere but costs twice as much.
pub fn sep_rad(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let sx = (0.5 * (ra2 - ra1)).to_radians().sin();
    let sy = (0.5 * (dec2 - dec1)).to_radians().sin();
    let cz = (0.5 * (dec1 + dec2)).to_radians().cos();
    let (x, y, z) = (sx * sx, sy * sy, cz * cz);
    // haversine(sep) = y + x cos(dec1) cos(dec2), with cos d1 cos d2 = cos^2(mean) - sin^2(half diff)
    let h = x * (z - y) + y;
    if h < 0.97 {
        2.0 * h.max(0.0).sqrt().asin()
    } else {
        sep_rad_vincenty(ra1, dec1, ra2, dec2)
    }
}

/// Vincenty's formula (atan2 of the cross and dot products), stable at every separation.
pub fn sep_rad_vincenty(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let s_dra = (ra2 - ra1).to_radians().sin();
    let half = (0.5 * (ra2 - ra1)).to_radians().sin();
    let hav_dra = 2.0 * half * half; // 1 - cos(dra) without cancellation
    let (s1, c1) = dec1.to_radians().sin_cos();
    let c2 = dec2.to_radians().cos();
    let (s_ddec, c_ddec) = (dec2 - dec1).to_radians().sin_cos();
    let num1 = c2 * s_dra;
    // c1 s2 - s1 c2 cos(dra), rewritten so that nearby points do not cancel catastrophically.
    let num2 = s_ddec + s1 * c2 * hav_dra;
    // s1 s2 + c1 c2 cos(dra), likewise.
    let den = c_ddec - c1 * c2 * hav_dra;
    num1.hypot(num2).atan2(den)
}

/// Great-circle separation in degrees.
pub fn sep_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    sep_rad(ra1, dec1, ra2, dec2).to_degrees()
}

/// Great-circle separation in arcseconds.
pub fn sep_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    sep_deg(ra1, dec1, ra2, dec2) * ARCSEC_PER_DEG
}

/// Position angle of point 2 seen from point 1, degrees east of north, in [0, 360).
/// Undefined (returned as 0) when the points coincide or point 1 is a pole and point 2
/// lies on the meridian through it.
pub fn position_angle_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (sd, cd) = (ra2 - ra1).to_radians().sin_cos();
    let (s1, c1) = dec1.to_radians().sin_cos();
    let (s2, c2) = dec2.to_radians().sin_cos();
    let y = sd * c2;
    let x = c1 * s2 - s1 * c2 * cd;
    if x == 0.0 && y == 0.0 {
        return 0.0;
    }
    wrap_ra(y.atan2(x).to_degrees())
}

/// The point `dist_deg` away from (ra, dec) along position angle `pa_deg` (east of north): the
/// "destination point" of spherical trigonometry. ra is wrapped to [0, 360), dec clamped to
/// [-90, 90].
pub fn offset_deg(ra: f64, dec: f64, dist_deg: f64, pa_deg: f64) -> (f64, f64) {
    let (sb, cb) = dec.to_radians().sin_cos();
    let (sr, cr) = dist_deg.to_radians().sin_cos();
    let (sp, cp) = pa_deg.to_radians().sin_cos();
    let d2 = (sb * cr + cb * sr * cp).clamp(-1.0, 1.0).asin();
    let ra2 = ra + (sp * sr * cb).atan2(cr - sb * d2.sin()).to_degrees();
    (wrap_ra(ra2), d2.to_degrees().clamp(-90.0, 90.0))
}

/// Fraction of the sphere's area inside a circle (spherical cap) of `radius_arcsec`:
/// `(1 - cos r) / 2 = sin^2(r / 2)` (the second form keeps its precision for tiny radii), the
/// whole sphere from r = 180 degrees on.
pub fn cap_sky_fraction(radius_arcsec: f64) -> f64 {
    let r_rad = (radius_arcsec * DEG_PER_ARCSEC).to_radians().min(std::f64::consts::PI);
    let s = (r_rad / 2.0).sin();
    s * s
}

/// Range of declinations covered by a circle (spherical cap): exactly [dec - r, dec + r]
/// clipped to the poles (a cap reaching past a pole contains it).
pub fn cap_dec_range(dec: f64, radius_deg: f64) -> (f64, f64) {
    ((dec - radius_deg).max(-90.0), (dec + radius_deg).min(90.0))
}

/// Half-width in right ascension of a circle: the largest |ra - ra0| over the cap, or None when
/// the cap contains a pole (then it spans all right ascensions).
pub fn cap_ra_half_width(dec: f64, radius_deg: f64) -> Option<f64> {
    if dec.abs() + radius_deg >= 90.0 || radius_deg >= 90.0 {
        return None;
    }
    let s = radius_deg.to_radians().sin() / dec.to_radians().cos();
    if s >= 1.0 {
        None
    } else {
        Some(s.asin().to_degrees())
    }
}

/// The right-ascension windows `[lo, hi]` (at most two, split at 0/360) that hold every
/// point of the circle of `radius_deg` around (ra in [0, 360), dec); an unused window is empty
/// (`lo > hi`), and a circle holding a pole gets the whole circle of ra.
pub fn cap_ra_windows(ra: f64, dec: f64, radius_deg: f64) -> [(f64, f64); 2] {
    const EMPTY: (f64, f64) = (0.0, -1.0);
    match cap_ra_half_width(dec, radius_deg) {
        None => [(0.0, 360.0), EMPTY],
        Some(w) => {
            let (a, b) = (ra - w, ra + w);
            if a < 0.0 {
                [(a + 360.0, 360.0), (0.0, b)]
            } else if b >= 360.0 {
                [(a, 360.0), (0.0, b - 360.0)]
            } else {
                [(a, b), EMPTY]
            }
        }
    }
}

/// Smallest angular distance (degrees) from a point to a box bounded by two meridians
/// `ra_min..ra_max` (ra_min < ra_max, both in [0, 360]) and two parallels `dec_min..dec_max`.
///
/// Why this is exact: on a parallel the separation grows monotonically with |delta ra|, so
/// when the point's ra is outside the box the closest point lies on one of the two meridian
/// edges; along a meridian the separation is unimodal in latitude, so clamping the unconstrained
/// foot of the perpendicular to [dec_min, dec_max] gives the minimum on that edge.
pub fn dist_to_box_deg(ra: f64, dec: f64, ra_min: f64, ra_max: f64, dec_min: f64, dec_max: f64) -> f64 {
    let ra = wrap_ra(ra);
    if ra >= ra_min && ra <= ra_max {
        return if dec < dec_min {
            dec_min - dec
        } else if dec > dec_max {
            dec - dec_max
        } else {
            0.0
        };
    }
    dist_to_meridian_segment_deg(ra, dec, ra_min, dec_min, dec_max)
        .min(dist_to_meridian_segment_deg(ra, dec, ra_max, dec_min, dec_max))
}

/// Smallest distance (degrees) from a point to the meridian segment at `ra_m` between
/// `dec_min` and `dec_max`.
///
/// Along the meridian, cos(sep) = A sin(lat) + B cos(lat) = R cos(lat - lat0) with
/// lat0 = atan2(A, B); its maximum over an interval is at lat0 when inside, else at an end.
pub fn dist_to_meridian_segment_deg(ra: f64, dec: f64, ra_m: f64, dec_min: f64, dec_max: f64) -> f64 {
    let (sd, cd) = dec.to_radians().sin_cos();
    let lat0 = sd.atan2(cd * (ra - ra_m).to_radians().cos()).to_degrees();
    let ends = sep_deg(ra, dec, ra_m, dec_min).min(sep_deg(ra, dec, ra_m, dec_max));
    if lat0 > dec_min && lat0 < dec_max {
        ends.min(sep_deg(ra, dec, ra_m, lat0))
    } else {
        ends
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrap_ra_edges() {
        assert_eq!(wrap_ra(0.0), 0.0);
        assert_eq!(wrap_ra(-0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(wrap_ra(360.0), 0.0);
        assert_eq!(wrap_ra(-1e-20), 0.0);
        assert_eq!(wrap_ra(720.5), 0.5);
        assert_eq!(wrap_ra(-10.0), 350.0);
    }

    #[test]
    fn wrap_delta_edges() {
        assert_eq!(wrap_delta_ra(180.0), 180.0);
        assert_eq!(wrap_delta_ra(-180.0), 180.0);
        assert_eq!(wrap_delta_ra(359.0), -1.0);
        assert_eq!(wrap_delta_ra(-359.0), 1.0);
    }

    #[test]
    fn separation_closed_forms() {
        // Along a meridian the separation is the declination difference.
        assert!((sep_deg(10.0, 20.0, 10.0, 35.0) - 15.0).abs() < 1e-12);
        // Along the equator it is the right-ascension difference, across 0/360 too.
        assert!((sep_deg(359.5, 0.0, 0.5, 0.0) - 1.0).abs() < 1e-12);
        // Antipodes.
        assert!((sep_deg(0.0, 30.0, 180.0, -30.0) - 180.0).abs() < 1e-12);
        // Pole to anywhere at dec d: 90 - d, whatever the ra.
        assert!((sep_deg(0.0, 90.0, 123.0, 40.0) - 50.0).abs() < 1e-12);
    }

    #[test]
    fn separation_tiny_angles_are_not_lost() {
        // 1 micro-arcsecond along a meridian and along a parallel at dec 45: acos would
        // return 0 here. The expected value is the difference of the representable inputs
        // (exact by Sterbenz's lemma).
        let dec2 = 45.0 + 1e-6 / 3600.0;
        let expected = (dec2 - 45.0) * 3600.0;
        let s = sep_arcsec(30.0, 45.0, 30.0, dec2);
        assert!((s - expected).abs() < 1e-15, "{s} vs {expected}");
        let ra2 = 30.0 + 1e-6 / 3600.0;
        let expected = (ra2 - 30.0) * 3600.0 * 45f64.to_radians().cos();
        let s = sep_arcsec(30.0, 45.0, ra2, 45.0);
        assert!((s - expected).abs() < 1e-15, "{s} vs {expected}");
    }

    #[test]
    fn position_angle_cardinal() {
        assert!((position_angle_deg(10.0, 0.0, 10.0, 1.0) - 0.0).abs() < 1e-12);
        assert!((position_angle_deg(10.0, 0.0, 11.0, 0.0) - 90.0).abs() < 1e-9);
        assert!((position_angle_deg(10.0, 0.0, 10.0, -1.0) - 180.0).abs() < 1e-12);
        assert!((position_angle_deg(10.0, 0.0, 9.0, 0.0) - 270.0).abs() < 1e-9);
        // Across RA 0/360: a point at ra 0.5 is east of ra 359.5.
        assert!((position_angle_deg(359.5, 0.0, 0.5, 0.0) - 90.0).abs() < 1e-9);
    }

    fn radec() -> impl Strategy<Value = (f64, f64)> {
        (0.0f64..360.0, -90.0f64..=90.0)
    }

    proptest! {
        #[test]
        fn separation_is_a_metric((a, b) in radec(), (c, d) in radec(), (e, f) in radec()) {
            let ab = sep_deg(a, b, c, d);
            prop_assert!((ab - sep_deg(c, d, a, b)).abs() < 1e-11);
            prop_assert!((0.0..=180.0).contains(&ab));
            prop_assert!(sep_deg(a, b, a, b) == 0.0);
            // triangle inequality with float slack
            prop_assert!(ab <= sep_deg(a, b, e, f) + sep_deg(e, f, c, d) + 1e-9);
        }

        #[test]
        fn haversine_and_vincenty_agree((a, b) in radec(), (c, d) in radec()) {
            // Both branches, everywhere: they must agree to far below 1e-6 arcsec.
            let h = sep_rad(a, b, c, d);
            let v = sep_rad_vincenty(a, b, c, d);
            prop_assert!((h - v).abs().to_degrees() * 3600.0 < 1e-8, "{h} vs {v}");
        }

        #[test]
        fn separation_matches_vector_angle((a, b) in radec(), (c, d) in radec()) {
            let v = UnitVector::from_radec(a, b).angle_rad(UnitVector::from_radec(c, d));
            prop_assert!((v - sep_rad(a, b, c, d)).abs() < 1e-12);
        }

        #[test]
        fn separation_ignores_ra_wrap((a, b) in radec(), (c, d) in radec(), k in -3i32..3) {
            let shifted = sep_deg(a + 360.0 * k as f64, b, c, d);
            prop_assert!((shifted - sep_deg(a, b, c, d)).abs() < 1e-9);
        }

        #[test]
        fn radec_roundtrip((a, b) in (0.0f64..360.0, -89.999f64..89.999)) {
            let (ra, dec) = UnitVector::from_radec(a, b).to_radec();
            prop_assert!(sep_deg(a, b, ra, dec) < 1e-11);
            prop_assert!((0.0..360.0).contains(&ra));
        }

        #[test]
        fn position_angle_then_offset_lands_on_target((a, b) in (0.0f64..360.0, -85.0f64..85.0),
                                                      (pa, r) in (0.0f64..360.0, 1e-4f64..30.0)) {
            // Walk r degrees along position angle pa from (a, b); the position angle back to
            // the destination must be pa again.
            let (ra2, dec2) = offset_deg(a, b, r, pa);
            let got = position_angle_deg(a, b, ra2, dec2);
            prop_assert!(wrap_delta_ra(got - pa).abs() < 1e-6, "pa {pa} got {got}");
            prop_assert!((sep_deg(a, b, ra2, dec2) - r).abs() < 1e-9);
        }

        #[test]
        fn cap_ra_half_width_bounds_every_cap_point((ra0, dec0) in (0.0f64..360.0, -89.0f64..89.0),
                                                    r in 1e-4f64..20.0, pa in 0.0f64..360.0) {
            let (lo, hi) = cap_dec_range(dec0, r);
            // A point on the cap's rim along position angle pa.
            let (ra2, dec2) = offset_deg(ra0, dec0, r, pa);
            prop_assert!(dec2 >= lo - 1e-9 && dec2 <= hi + 1e-9);
            if let Some(w) = cap_ra_half_width(dec0, r) {
                let dra = wrap_delta_ra(ra2 - ra0);
                prop_assert!(dra.abs() <= w + 1e-9, "dra {dra} w {w}");
            }
        }

        #[test]
        fn box_distance_matches_dense_sampling((ra, dec) in radec(),
                                               ra_min in 0.0f64..350.0, w in 0.01f64..10.0,
                                               dec_min in -90.0f64..80.0, h in 0.01f64..10.0) {
            let ra_max = ra_min + w;
            let dec_max = (dec_min + h).min(90.0);
            let exact = dist_to_box_deg(ra, dec, ra_min, ra_max, dec_min, dec_max);
            // Brute force: the minimum over a dense grid of the box can only be >= the exact
            // minimum, and not by more than the grid spacing.
            let n = 60;
            let mut best = f64::INFINITY;
            for i in 0..=n {
                for j in 0..=n {
                    let r = ra_min + w * i as f64 / n as f64;
                    let d = dec_min + (dec_max - dec_min) * j as f64 / n as f64;
                    best = best.min(sep_deg(ra, dec, r, d));
                }
            }
            let spacing = (w.max(dec_max - dec_min)) / n as f64;
            prop_assert!(exact <= best + 1e-9, "exact {exact} brute {best}");
            prop_assert!(best - exact <= spacing + 1e-9, "exact {exact} brute {best}");
        }
    }

    #[test]
    fn cap_sky_fractions() {
        // A hemisphere is half the sky, 180 degrees and beyond all of it; small caps are
        // pi r^2 / (4 pi) = r^2 / 4 (r in radians).
        assert!((cap_sky_fraction(90.0 * 3600.0) - 0.5).abs() < 1e-15);
        assert_eq!(cap_sky_fraction(180.0 * 3600.0), 1.0);
        assert_eq!(cap_sky_fraction(400.0 * 3600.0), 1.0);
        assert_eq!(cap_sky_fraction(0.0), 0.0);
        let r = (1.0f64 / 3600.0).to_radians();
        assert!((cap_sky_fraction(1.0) / (r * r / 4.0) - 1.0).abs() < 1e-10);
    }
}
