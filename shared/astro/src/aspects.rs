//! Aspects between ecliptic positions (natal, transit or synastry).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::AstroError;
use crate::positions::wrap_180;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AspectKind {
    Conjunction,
    Opposition,
    Trine,
    Square,
    Sextile,
    SemiSextile,
    SemiSquare,
    Sesquiquadrate,
    Quincunx,
    Quintile,
    BiQuintile,
}

impl AspectKind {
    pub const ALL: [AspectKind; 11] = [
        AspectKind::Conjunction,
        AspectKind::Opposition,
        AspectKind::Trine,
        AspectKind::Square,
        AspectKind::Sextile,
        AspectKind::SemiSextile,
        AspectKind::SemiSquare,
        AspectKind::Sesquiquadrate,
        AspectKind::Quincunx,
        AspectKind::Quintile,
        AspectKind::BiQuintile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AspectKind::Conjunction => "conjunction",
            AspectKind::Opposition => "opposition",
            AspectKind::Trine => "trine",
            AspectKind::Square => "square",
            AspectKind::Sextile => "sextile",
            AspectKind::SemiSextile => "semi_sextile",
            AspectKind::SemiSquare => "semi_square",
            AspectKind::Sesquiquadrate => "sesquiquadrate",
            AspectKind::Quincunx => "quincunx",
            AspectKind::Quintile => "quintile",
            AspectKind::BiQuintile => "bi_quintile",
        }
    }

    pub fn accepted_names() -> String {
        AspectKind::ALL.map(|a| a.as_str()).join(", ")
    }

    /// Exact separation in degrees.
    pub fn angle(self) -> f64 {
        match self {
            AspectKind::Conjunction => 0.0,
            AspectKind::Opposition => 180.0,
            AspectKind::Trine => 120.0,
            AspectKind::Square => 90.0,
            AspectKind::Sextile => 60.0,
            AspectKind::SemiSextile => 30.0,
            AspectKind::SemiSquare => 45.0,
            AspectKind::Sesquiquadrate => 135.0,
            AspectKind::Quincunx => 150.0,
            AspectKind::Quintile => 72.0,
            AspectKind::BiQuintile => 144.0,
        }
    }

    /// Default orb in degrees (documented in docs/astro.md).
    pub fn default_orb(self) -> f64 {
        match self {
            AspectKind::Conjunction | AspectKind::Opposition => 8.0,
            AspectKind::Trine | AspectKind::Square => 7.0,
            AspectKind::Sextile => 5.0,
            AspectKind::Quincunx => 3.0,
            AspectKind::SemiSextile
            | AspectKind::SemiSquare
            | AspectKind::Sesquiquadrate
            | AspectKind::Quintile
            | AspectKind::BiQuintile => 2.0,
        }
    }
}

impl FromStr for AspectKind {
    type Err = AstroError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AspectKind::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| AstroError::UnknownAspect {
                given: s.to_string(),
            })
    }
}

/// Which aspects to look for, with their orbs.
#[derive(Debug, Clone, PartialEq)]
pub struct AspectConfig {
    pub orbs: BTreeMap<AspectKind, f64>,
}

impl Default for AspectConfig {
    fn default() -> Self {
        AspectConfig {
            orbs: AspectKind::ALL
                .iter()
                .map(|k| (*k, k.default_orb()))
                .collect(),
        }
    }
}

impl AspectConfig {
    /// Kinds (default: all) with default orbs overridden by `orbs`.
    pub fn new(
        kinds: Option<&[AspectKind]>,
        orbs: Option<&BTreeMap<AspectKind, f64>>,
    ) -> Result<Self, AstroError> {
        let kinds = kinds.unwrap_or(&AspectKind::ALL);
        let mut config = BTreeMap::new();
        for kind in kinds {
            config.insert(*kind, kind.default_orb());
        }
        if let Some(overrides) = orbs {
            for (kind, orb) in overrides {
                if !(0.0..=15.0).contains(orb) || !orb.is_finite() {
                    return Err(AstroError::InvalidOrb {
                        aspect: kind.as_str().to_string(),
                        value: *orb,
                    });
                }
                if config.contains_key(kind) {
                    config.insert(*kind, *orb);
                }
            }
        }
        Ok(AspectConfig { orbs: config })
    }
}

/// An ecliptic position taking part in aspects.
#[derive(Debug, Clone, PartialEq)]
pub struct AspectPoint {
    /// `"sun".into()` for a static name (no allocation), or an owned `String`.
    pub name: Cow<'static, str>,
    pub longitude: f64,
    /// Degrees/day; 0 for points treated as fixed (angles).
    pub speed: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AspectPhase {
    Applying,
    Separating,
    /// Neither moves relative to the other (e.g. two fixed points).
    Exact,
}

impl AspectPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            AspectPhase::Applying => "applying",
            AspectPhase::Separating => "separating",
            AspectPhase::Exact => "exact",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Aspect {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub a: Cow<'static, str>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub b: Cow<'static, str>,
    pub kind: AspectKind,
    /// Exact angle of the aspect, degrees.
    pub angle: f64,
    /// Actual separation, degrees [0, 180].
    pub separation: f64,
    /// |separation − angle|, degrees.
    pub orb: f64,
    pub phase: AspectPhase,
    /// 1 at exact, 0 at the edge of the allowed orb.
    pub exactness: f64,
}

/// (kind, exact angle, allowed orb) for every configured kind, in `AspectConfig::orbs`
/// order, and for each whole degree of separation the kinds whose orb window reaches it.
pub(crate) struct KindTable {
    entries: [(AspectKind, f64, f64); AspectKind::ALL.len()],
    /// Bit i of `candidates[d]`: entry i may match a separation in [d, d + 1).
    candidates: [u16; 181],
}

impl KindTable {
    pub(crate) fn new(config: &AspectConfig) -> KindTable {
        let mut table = KindTable {
            entries: [(AspectKind::Conjunction, 0.0, 0.0); AspectKind::ALL.len()],
            candidates: [0; 181],
        };
        for (i, (slot, (kind, max_orb))) in table.entries.iter_mut().zip(&config.orbs).enumerate() {
            let angle = kind.angle();
            *slot = (*kind, angle, *max_orb);
            // One degree of slack on each side; the exact test is in `aspect_between`.
            let low = (angle - max_orb - 1.0).max(0.0) as usize;
            let high = ((angle + max_orb + 1.0).min(180.0) as usize).min(180);
            for mask in table.candidates.iter_mut().take(high + 1).skip(low) {
                *mask |= 1 << i;
            }
        }
        table
    }
}

/// `Cow::clone`, inlined: static names (every natal point) are copied, not allocated.
#[inline(always)]
#[allow(clippy::ptr_arg)] // must tell borrowed from owned
fn share(name: &Cow<'static, str>) -> Cow<'static, str> {
    match name {
        Cow::Borrowed(s) => Cow::Borrowed(s),
        Cow::Owned(s) => Cow::Owned(s.clone()),
    }
}

fn aspect_between(a: &AspectPoint, b: &AspectPoint, kinds: &KindTable) -> Option<Aspect> {
    let signed = wrap_180(b.longitude - a.longitude);
    let separation = signed.abs();
    let mut mask = *kinds.candidates.get(separation as usize)?;
    // The closest configured aspect within its orb (first one in table order on ties).
    let mut best: Option<(AspectKind, f64, f64, f64)> = None;
    while mask != 0 {
        let (kind, angle, max_orb) = kinds.entries[mask.trailing_zeros() as usize];
        mask &= mask - 1;
        let orb = (separation - angle).abs();
        if orb <= max_orb && best.is_none_or(|(_, _, _, o)| orb < o) {
            best = Some((kind, angle, max_orb, orb));
        }
    }
    let (kind, angle, max_orb, orb) = best?;
    // d(separation)/dt; the orb shrinks when it has the opposite sign of (separation − angle).
    let separation_rate = signed.signum() * (b.speed - a.speed);
    let offset = separation - angle;
    let phase = if separation_rate == 0.0 || offset == 0.0 {
        AspectPhase::Exact
    } else if offset * separation_rate < 0.0 {
        AspectPhase::Applying
    } else {
        AspectPhase::Separating
    };
    Some(Aspect {
        a: share(&a.name),
        b: share(&b.name),
        kind,
        angle,
        separation,
        orb,
        phase,
        exactness: if max_orb > 0.0 {
            1.0 - orb / max_orb
        } else {
            1.0
        },
    })
}

/// The table for [`AspectConfig::default`], built once.
pub(crate) fn default_kinds() -> &'static KindTable {
    static DEFAULT: OnceLock<KindTable> = OnceLock::new();
    DEFAULT.get_or_init(|| KindTable::new(&AspectConfig::default()))
}

/// Aspects among one set of points (natal chart), each pair once.
pub fn aspects_within(points: &[AspectPoint], config: &AspectConfig) -> Vec<Aspect> {
    aspects_within_kinds(points, &KindTable::new(config))
}

pub(crate) fn aspects_within_kinds(points: &[AspectPoint], kinds: &KindTable) -> Vec<Aspect> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            out.extend(aspect_between(a, b, kinds));
        }
    }
    out
}

/// Aspects from every point of `a` to every point of `b` (synastry, transits).
pub fn aspects_between(a: &[AspectPoint], b: &[AspectPoint], config: &AspectConfig) -> Vec<Aspect> {
    let kinds = KindTable::new(config);
    a.iter()
        .flat_map(|p| b.iter().filter_map(|q| aspect_between(p, q, &kinds)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &'static str, longitude: f64, speed: f64) -> AspectPoint {
        AspectPoint {
            name: name.into(),
            longitude,
            speed,
        }
    }

    #[test]
    fn applying_and_separating() {
        let config = AspectConfig::default();
        // Moon at 10°, fast, Saturn at 252°: separation 118° and growing towards 120° → applying.
        let a = aspects_within(
            &[point("moon", 10.0, 13.0), point("saturn", 252.0, 0.03)],
            &config,
        );
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, AspectKind::Trine);
        assert_eq!(a[0].phase, AspectPhase::Applying);
        assert!((a[0].orb - 2.0).abs() < 1e-9);
        // Saturn at 248°: separation 122° and growing → separating.
        let a = aspects_within(
            &[point("moon", 10.0, 13.0), point("saturn", 248.0, 0.0)],
            &config,
        );
        assert_eq!(a[0].kind, AspectKind::Trine);
        assert_eq!(a[0].phase, AspectPhase::Separating);
        // Wrap-around conjunction.
        let a = aspects_within(&[point("x", 359.0, 1.0), point("y", 1.0, 0.0)], &config);
        assert_eq!(a[0].kind, AspectKind::Conjunction);
        assert_eq!(a[0].phase, AspectPhase::Applying);
    }

    #[test]
    fn orbs_are_configurable_and_validated() {
        let orbs: BTreeMap<_, _> = [(AspectKind::Square, 1.0)].into();
        let config = AspectConfig::new(Some(&[AspectKind::Square]), Some(&orbs)).unwrap();
        assert!(aspects_within(&[point("a", 0.0, 0.0), point("b", 92.0, 0.0)], &config).is_empty());
        let bad: BTreeMap<_, _> = [(AspectKind::Square, 40.0)].into();
        assert_eq!(
            AspectConfig::new(None, Some(&bad)).unwrap_err().field(),
            Some("orbs")
        );
    }
}
