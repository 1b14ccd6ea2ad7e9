//! Signs, elements, modalities and sidereal ayanamsas.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::AstroError;
use crate::positions::normalize_degrees;
use crate::time::J2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sign {
    Aries,
    Taurus,
    Gemini,
    Cancer,
    Leo,
    Virgo,
    Libra,
    Scorpio,
    Sagittarius,
    Capricorn,
    Aquarius,
    Pisces,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Element {
    Fire,
    Earth,
    Air,
    Water,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    Cardinal,
    Fixed,
    Mutable,
}

impl Element {
    pub fn as_str(self) -> &'static str {
        match self {
            Element::Fire => "fire",
            Element::Earth => "earth",
            Element::Air => "air",
            Element::Water => "water",
        }
    }
}

impl Modality {
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Cardinal => "cardinal",
            Modality::Fixed => "fixed",
            Modality::Mutable => "mutable",
        }
    }
}

impl Sign {
    pub fn as_str(self) -> &'static str {
        match self {
            Sign::Aries => "aries",
            Sign::Taurus => "taurus",
            Sign::Gemini => "gemini",
            Sign::Cancer => "cancer",
            Sign::Leo => "leo",
            Sign::Virgo => "virgo",
            Sign::Libra => "libra",
            Sign::Scorpio => "scorpio",
            Sign::Sagittarius => "sagittarius",
            Sign::Capricorn => "capricorn",
            Sign::Aquarius => "aquarius",
            Sign::Pisces => "pisces",
        }
    }

    const ALL: [Sign; 12] = [
        Sign::Aries,
        Sign::Taurus,
        Sign::Gemini,
        Sign::Cancer,
        Sign::Leo,
        Sign::Virgo,
        Sign::Libra,
        Sign::Scorpio,
        Sign::Sagittarius,
        Sign::Capricorn,
        Sign::Aquarius,
        Sign::Pisces,
    ];

    /// Sign and degree within it for a longitude in degrees.
    pub fn of_longitude(longitude: f64) -> (Sign, f64) {
        let lon = normalize_degrees(longitude);
        let index = ((lon / 30.0).floor() as usize).min(11);
        (Sign::ALL[index], lon - 30.0 * index as f64)
    }

    pub fn element(self) -> Element {
        [Element::Fire, Element::Earth, Element::Air, Element::Water][self as usize % 4]
    }

    pub fn modality(self) -> Modality {
        [Modality::Cardinal, Modality::Fixed, Modality::Mutable][self as usize % 3]
    }
}

/// Sidereal ayanamsas. Each is its value at J2000.0 TT (the usual definitions
/// as realised by Swiss Ephemeris, e.g. Lahiri 23.245524743° on 1956-03-21)
/// plus the IAU 2006 general precession in longitude; this matches Swiss
/// Ephemeris to < 0.005″ over 1800–2200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Ayanamsa {
    Lahiri,
    FaganBradley,
    Krishnamurti,
    Raman,
}

impl Ayanamsa {
    pub const ALL: [Ayanamsa; 4] = [
        Ayanamsa::Lahiri,
        Ayanamsa::FaganBradley,
        Ayanamsa::Krishnamurti,
        Ayanamsa::Raman,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ayanamsa::Lahiri => "lahiri",
            Ayanamsa::FaganBradley => "fagan_bradley",
            Ayanamsa::Krishnamurti => "krishnamurti",
            Ayanamsa::Raman => "raman",
        }
    }

    pub fn accepted_names() -> String {
        Ayanamsa::ALL.map(|a| a.as_str()).join(", ")
    }

    fn value_at_j2000(self) -> f64 {
        match self {
            Ayanamsa::Lahiri => 23.857_092_325_5,
            Ayanamsa::FaganBradley => 24.740_299_966_2,
            Ayanamsa::Krishnamurti => 23.760_240_012_1,
            Ayanamsa::Raman => 22.410_791_012_1,
        }
    }

    /// Mean ayanamsa (degrees) at TT Julian day: J2000 value + IAU 2006 precession in longitude.
    pub fn mean_degrees(self, jd_tt: f64) -> f64 {
        let t = (jd_tt - J2000) / 36525.0;
        let p_a = ((((-0.000_000_038_3 * t - 0.000_023_857) * t + 0.000_079_64) * t + 1.105_434_8)
            * t
            + 5_028.796_195)
            * t;
        self.value_at_j2000() + p_a / 3600.0
    }

    /// True ayanamsa: mean plus nutation in longitude (radians in, degrees out).
    pub fn true_degrees(self, jd_tt: f64, nutation_longitude: f64) -> f64 {
        self.mean_degrees(jd_tt) + nutation_longitude.to_degrees()
    }
}

impl FromStr for Ayanamsa {
    type Err = AstroError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ayanamsa::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| AstroError::UnknownAyanamsa {
                given: s.to_string(),
            })
    }
}

/// Zodiac choice: tropical, or sidereal with an ayanamsa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ZodiacKind {
    #[default]
    Tropical,
    Sidereal,
}

impl ZodiacKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ZodiacKind::Tropical => "tropical",
            ZodiacKind::Sidereal => "sidereal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zodiac {
    #[default]
    Tropical,
    Sidereal(Ayanamsa),
}

impl Zodiac {
    /// Degrees to subtract from tropical apparent longitudes.
    pub fn offset_degrees(self, jd_tt: f64, nutation_longitude: f64) -> f64 {
        match self {
            Zodiac::Tropical => 0.0,
            Zodiac::Sidereal(a) => a.true_degrees(jd_tt, nutation_longitude),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_elements_modalities() {
        assert_eq!(Sign::of_longitude(0.0), (Sign::Aries, 0.0));
        let (s, d) = Sign::of_longitude(359.5);
        assert_eq!(s, Sign::Pisces);
        assert!((d - 29.5).abs() < 1e-12);
        assert_eq!(Sign::Leo.element(), Element::Fire);
        assert_eq!(Sign::Capricorn.element(), Element::Earth);
        assert_eq!(Sign::Aquarius.modality(), Modality::Fixed);
        assert_eq!(Sign::Pisces.modality(), Modality::Mutable);
        assert_eq!(Sign::of_longitude(-30.0).0, Sign::Pisces);
    }

    #[test]
    fn lahiri_definition_epoch() {
        // Swiss Ephemeris' Lahiri epoch value: 23.245524743° at 1956-03-21 0h TT (JD 2435553.5).
        let v = Ayanamsa::Lahiri.mean_degrees(2435553.5);
        assert!((v - 23.245_524_743).abs() * 3600.0 < 0.5, "{v}");
    }
}
