//! The SVG chart wheel: zodiac ring with sign glyphs, house cusps and numbers, the ASC/MC axes,
//! planet glyphs spread apart where they crowd, degree labels, aspect lines coloured by kind
//! and a legend. Self-contained: glyphs are the project's own path outlines
//! (`shared/charts/data/wheel/glyphs.json`) placed with `<use>`, styles sit in one `<style>` element,
//! text uses the generic `sans-serif` family; no fonts or images are fetched.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::OnceLock;

use orrery_astro::{AspectKind, Chart, PointKind};
use serde::Deserialize;

/// Colour scheme of the wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

impl std::str::FromStr for Theme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            other => Err(format!("unknown theme {other:?}; accepted: light, dark")),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WheelOptions {
    pub theme: Theme,
    /// Shown above the legend (e.g. the chart's name).
    pub title: Option<String>,
}

#[derive(Deserialize)]
struct GlyphFile {
    glyphs: HashMap<String, String>,
}

fn glyphs() -> &'static HashMap<String, String> {
    static GLYPHS: OnceLock<HashMap<String, String>> = OnceLock::new();
    GLYPHS.get_or_init(|| {
        serde_json::from_str::<GlyphFile>(include_str!("../data/wheel/glyphs.json"))
            .map(|file| file.glyphs)
            .unwrap_or_default()
    })
}

const SIGNS: [&str; 12] = [
    "aries",
    "taurus",
    "gemini",
    "cancer",
    "leo",
    "virgo",
    "libra",
    "scorpio",
    "sagittarius",
    "capricorn",
    "aquarius",
    "pisces",
];
/// Element class of each sign, in zodiac order.
const SIGN_ELEMENT: [&str; 4] = ["fire", "earth", "air", "water"];

const WIDTH: f64 = 680.0;
const HEIGHT: f64 = 860.0;
const CX: f64 = 340.0;
const CY: f64 = 340.0;
const R_OUTER: f64 = 300.0;
const R_ZODIAC_INNER: f64 = 258.0;
const R_HOUSE_INNER: f64 = 228.0;
const R_PLANET: f64 = 196.0;
const R_LABEL: f64 = 164.0;
const R_ASPECT: f64 = 138.0;
const GLYPH_SIZE: f64 = 22.0;
const LEGEND_COLUMNS: usize = 3;
/// The least angular distance between two planet glyphs on the wheel, in degrees.
const MIN_GLYPH_GAP: f64 = 7.5;

const LIGHT_STYLE: &str = ".bg{fill:#fff}.ink{stroke:#1f2937;fill:none}.txt{fill:#1f2937}\
.dim{fill:#6b7280}.fire{fill:#fde2e1}.earth{fill:#e3f0dc}.air{fill:#fdf6d8}.water{fill:#dbeafe}\
.g{stroke:#1f2937;color:#1f2937}";
const DARK_STYLE: &str = ".bg{fill:#111827}.ink{stroke:#e5e7eb;fill:none}.txt{fill:#e5e7eb}\
.dim{fill:#9ca3af}.fire{fill:#4c1d1d}.earth{fill:#1f3a24}.air{fill:#3f3a1a}.water{fill:#1e2f4f}\
.g{stroke:#e5e7eb;color:#e5e7eb}";
const COMMON_STYLE: &str = "text{font-family:sans-serif}.t{font-size:11px}.s{font-size:9px}\
.h{font-size:13px;font-weight:bold}.ax{stroke-width:2.2}.c{stroke-width:0.8}\
.a-conjunction{stroke:#a855f7}.a-opposition{stroke:#dc2626}.a-square{stroke:#ea580c}\
.a-trine{stroke:#2563eb}.a-sextile{stroke:#0d9488}.a-minor{stroke:#9ca3af;stroke-dasharray:4 3}";

/// The aspect's line class; minor aspects share one dashed grey.
fn aspect_class(kind: AspectKind) -> &'static str {
    match kind {
        AspectKind::Conjunction => "a-conjunction",
        AspectKind::Opposition => "a-opposition",
        AspectKind::Square => "a-square",
        AspectKind::Trine => "a-trine",
        AspectKind::Sextile => "a-sextile",
        _ => "a-minor",
    }
}

/// Screen point at ecliptic `longitude`, radius `r`: the Ascendant at nine o'clock, longitude
/// growing counter-clockwise as on a traditional chart.
fn at(longitude: f64, asc: f64, r: f64) -> (f64, f64) {
    let theta = (longitude - asc).to_radians();
    (CX - r * theta.cos(), CY + r * theta.sin())
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if is_xml_char(c) => out.push(c),
            // Not even escaped forms of these are well-formed XML 1.0: show that something
            // was there rather than hand out a document no parser accepts.
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// XML 1.0's `Char` production (§2.2); Rust's `char` already excludes the surrogates.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

/// One glyph to draw on the planet ring.
#[derive(Debug, Clone)]
struct Marker {
    glyph: &'static str,
    label: &'static str,
    longitude: f64,
    /// Where the glyph is drawn after spreading collisions.
    shown: f64,
    retrograde: bool,
}

/// Spreads markers so neighbours are at least `gap` degrees apart, moving each cluster as
/// little as possible around its mean (markers are sorted by longitude).
fn spread(markers: &mut [Marker], gap: f64) {
    let n = markers.len();
    if n < 2 {
        return;
    }
    markers.sort_by(|a, b| a.longitude.total_cmp(&b.longitude));
    // Start the circle after the widest empty arc, so no cluster wraps around 0°.
    let widest = (0..n)
        .max_by(|&i, &j| {
            let width = |k: usize| {
                (markers[(k + 1) % n].longitude - markers[k].longitude).rem_euclid(360.0)
            };
            width(i).total_cmp(&width(j))
        })
        .unwrap_or(n - 1);
    let start = (widest + 1) % n;
    let base = markers[start].longitude;
    let unrolled: Vec<f64> = (0..n)
        .map(|k| {
            let lon = markers[(start + k) % n].longitude;
            base + (lon - base).rem_euclid(360.0)
        })
        .collect();
    // Clusters: runs of markers closer than the gap; each is laid out evenly around its mean,
    // merging with the next cluster until nothing overlaps.
    let mut clusters: Vec<(usize, usize, f64)> = Vec::new(); // (first, len, centre)
    for (k, &lon) in unrolled.iter().enumerate() {
        clusters.push((k, 1, lon));
        while clusters.len() > 1 {
            let (b_first, b_len, b_centre) = clusters[clusters.len() - 1];
            let (a_first, a_len, a_centre) = clusters[clusters.len() - 2];
            let a_end = a_centre + (a_len as f64 - 1.0) * gap / 2.0;
            let b_start = b_centre - (b_len as f64 - 1.0) * gap / 2.0;
            if b_start - a_end >= gap {
                break;
            }
            let len = a_len + b_len;
            let mean = unrolled[a_first..b_first + b_len].iter().sum::<f64>() / len as f64;
            clusters.pop();
            clusters.pop();
            clusters.push((a_first, len, mean));
        }
    }
    for (first, len, centre) in clusters {
        for i in 0..len {
            let shown = centre + (i as f64 - (len as f64 - 1.0) / 2.0) * gap;
            markers[(start + first + i) % n].shown = shown.rem_euclid(360.0);
        }
    }
}

fn markers(chart: &Chart) -> Vec<Marker> {
    let mut markers: Vec<Marker> = chart
        .bodies
        .iter()
        .map(|b| Marker {
            glyph: b.name.as_str(),
            label: b.name.as_str(),
            longitude: b.longitude,
            shown: b.longitude,
            retrograde: b.retrograde,
        })
        .collect();
    let has = |kind: PointKind| chart.points.iter().any(|p| p.name == kind);
    let node = if has(PointKind::TrueNode) {
        PointKind::TrueNode
    } else {
        PointKind::MeanNode
    };
    for p in &chart.points {
        let glyph = match p.name {
            kind if kind == node => "north_node",
            PointKind::MeanLilith => "lilith",
            PointKind::PartOfFortune => "part_of_fortune",
            _ => continue,
        };
        markers.push(Marker {
            glyph,
            label: p.name.as_str(),
            longitude: p.longitude,
            shown: p.longitude,
            retrograde: false,
        });
    }
    markers
}

fn use_glyph(out: &mut String, name: &str, x: f64, y: f64, size: f64) {
    let _ = write!(
        out,
        r##"<use href="#g-{name}" x="{:.1}" y="{:.1}" width="{size:.0}" height="{size:.0}"/>"##,
        x - size / 2.0,
        y - size / 2.0
    );
}

fn degree_label(longitude: f64) -> String {
    let within = longitude.rem_euclid(30.0);
    let mut degrees = within.floor();
    let mut minutes = ((within - degrees) * 60.0).round();
    if minutes >= 60.0 {
        minutes = 0.0;
        degrees += 1.0;
    }
    format!("{degrees:.0}°{minutes:02.0}′")
}

/// Renders the wheel of `chart` as a standalone SVG document.
pub fn render(chart: &Chart, options: &WheelOptions) -> String {
    let asc = chart.angles.asc.longitude;
    let mut out = String::with_capacity(24 * 1024);
    let mut markers = markers(chart);
    spread(&mut markers, MIN_GLYPH_GAP);
    open_document(&mut out, options);
    glyph_definitions(&mut out, &markers);
    zodiac_ring(&mut out, asc);
    house_cusps(&mut out, chart, asc);
    angle_axes(&mut out, chart, asc);
    aspect_lines(&mut out, chart, asc);
    planets(&mut out, &markers, asc);
    legend(&mut out, chart, &markers, options);
    out.push_str("</svg>");
    out
}

/// The `<svg>` element with its accessible name, and the theme's styles.
fn open_document(out: &mut String, options: &WheelOptions) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{}">"#,
        xml_escape(options.title.as_deref().unwrap_or("Natal chart wheel"))
    );
    let style = match options.theme {
        Theme::Light => LIGHT_STYLE,
        Theme::Dark => DARK_STYLE,
    };
    let _ = write!(out, "<style>{style}{COMMON_STYLE}</style>");
}

/// The glyph symbols this wheel uses (signs and its markers), and the background.
fn glyph_definitions(out: &mut String, markers: &[Marker]) {
    // Only the glyphs this wheel uses.
    let glyphs = glyphs();
    let mut used: Vec<&str> = SIGNS.to_vec();
    used.extend(markers.iter().map(|m| m.glyph));
    used.sort_unstable();
    used.dedup();
    out.push_str("<defs>");
    for name in used {
        if let Some(path) = glyphs.get(name) {
            let _ = write!(
                out,
                r#"<symbol id="g-{name}" viewBox="0 0 24 24"><path d="{path}" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"/></symbol>"#
            );
        }
    }
    out.push_str("</defs>");
    let _ = write!(
        out,
        r#"<rect class="bg" width="{WIDTH}" height="{HEIGHT}"/>"#
    );
}

/// The zodiac ring: one sector per sign, tinted by element, with its glyph; the ring outlines, sign boundaries and 5° ticks.
fn zodiac_ring(out: &mut String, asc: f64) {
    // Zodiac ring: one sector per sign, tinted by element, with its glyph.
    for (i, sign) in SIGNS.iter().enumerate() {
        let start = i as f64 * 30.0;
        let (x1, y1) = at(start, asc, R_OUTER);
        let (x2, y2) = at(start + 30.0, asc, R_OUTER);
        let (x3, y3) = at(start + 30.0, asc, R_ZODIAC_INNER);
        let (x4, y4) = at(start, asc, R_ZODIAC_INNER);
        // Counter-clockwise on screen is the negative sweep direction in SVG.
        let _ = write!(
            out,
            r#"<path class="{}" d="M{x1:.1} {y1:.1}A{R_OUTER} {R_OUTER} 0 0 0 {x2:.1} {y2:.1}L{x3:.1} {y3:.1}A{R_ZODIAC_INNER} {R_ZODIAC_INNER} 0 0 1 {x4:.1} {y4:.1}Z"/>"#,
            SIGN_ELEMENT[i % 4]
        );
        let (gx, gy) = at(start + 15.0, asc, (R_OUTER + R_ZODIAC_INNER) / 2.0);
        out.push_str(r#"<g class="g">"#);
        use_glyph(out, sign, gx, gy, GLYPH_SIZE);
        out.push_str("</g>");
    }
    // Ring outlines, sign boundaries and 5° ticks, as one path each.
    let _ = write!(
        out,
        r#"<g class="ink c"><circle cx="{CX}" cy="{CY}" r="{R_OUTER}"/><circle cx="{CX}" cy="{CY}" r="{R_ZODIAC_INNER}"/><circle cx="{CX}" cy="{CY}" r="{R_HOUSE_INNER}"/><circle cx="{CX}" cy="{CY}" r="{R_ASPECT}"/>"#
    );
    let mut ticks = String::with_capacity(72 * 24);
    for step in 0..72 {
        let lon = f64::from(step) * 5.0;
        // Sign boundaries cross the ring; 10° and 5° marks are short ticks inside it.
        let (inner, outer) = match step {
            s if s % 6 == 0 => (R_ZODIAC_INNER, R_OUTER),
            s if s % 2 == 0 => (R_ZODIAC_INNER - 8.0, R_ZODIAC_INNER),
            _ => (R_ZODIAC_INNER - 4.0, R_ZODIAC_INNER),
        };
        let (x1, y1) = at(lon, asc, inner);
        let (x2, y2) = at(lon, asc, outer);
        let _ = write!(ticks, "M{x1:.1} {y1:.1}L{x2:.1} {y2:.1}");
    }
    let _ = write!(out, r#"<path d="{ticks}"/></g>"#);
}

/// House cusps (but the four angles, drawn as axes) and house numbers.
fn house_cusps(out: &mut String, chart: &Chart, asc: f64) {
    // House cusps and numbers; the four angles are drawn as axes below.
    let cusps: Vec<f64> = chart.houses.iter().map(|h| h.longitude).collect();
    let mut cusp_path = String::with_capacity(12 * 32);
    for (i, &cusp) in cusps.iter().enumerate() {
        if i % 3 == 0 {
            continue;
        }
        let (x1, y1) = at(cusp, asc, R_ASPECT);
        let (x2, y2) = at(cusp, asc, R_ZODIAC_INNER);
        let _ = write!(cusp_path, "M{x1:.1} {y1:.1}L{x2:.1} {y2:.1}");
    }
    let _ = write!(out, r#"<path class="ink c" d="{cusp_path}"/>"#);
    for (i, &cusp) in cusps.iter().enumerate() {
        let next = cusps[(i + 1) % cusps.len().max(1)];
        let width = (next - cusp).rem_euclid(360.0);
        let (x, y) = at(
            cusp + width / 2.0,
            asc,
            (R_ZODIAC_INNER + R_HOUSE_INNER) / 2.0,
        );
        let _ = write!(
            out,
            r#"<text class="dim s" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y + 3.0,
            i + 1
        );
    }
}

/// The ASC–DSC and MC–IC axes, labelled outside the wheel.
fn angle_axes(out: &mut String, chart: &Chart, asc: f64) {
    // ASC–DSC and MC–IC axes, with their labels outside the wheel.
    let axes = [
        ("ASC", chart.angles.asc.longitude),
        ("DSC", chart.angles.dsc.longitude),
        ("MC", chart.angles.mc.longitude),
        ("IC", chart.angles.ic.longitude),
    ];
    let mut axis_path = String::new();
    for (_, lon) in axes {
        let (x1, y1) = at(lon, asc, R_ASPECT);
        let (x2, y2) = at(lon, asc, R_OUTER + 3.0);
        let _ = write!(axis_path, "M{x1:.1} {y1:.1}L{x2:.1} {y2:.1}");
    }
    let _ = write!(out, r#"<path class="ink ax" d="{axis_path}"/>"#);
    for (name, lon) in axes {
        let (x, y) = at(lon, asc, R_OUTER + 20.0);
        let _ = write!(
            out,
            r#"<text class="txt s" x="{x:.1}" y="{:.1}" text-anchor="middle">{name}</text>"#,
            y + 3.0
        );
    }
}

/// Aspect lines between the true positions of bodies and points.
fn aspect_lines(out: &mut String, chart: &Chart, asc: f64) {
    // Aspect lines between the true positions of bodies and points.
    let position_of = |name: &str| -> Option<f64> {
        chart
            .bodies
            .iter()
            .find(|b| b.name.as_str() == name)
            .map(|b| b.longitude)
            .or_else(|| {
                chart
                    .points
                    .iter()
                    .find(|p| p.name.as_str() == name)
                    .map(|p| p.longitude)
            })
            .or(match name {
                "asc" => Some(chart.angles.asc.longitude),
                "mc" => Some(chart.angles.mc.longitude),
                _ => None,
            })
    };
    out.push_str(r#"<g class="c">"#);
    for aspect in &chart.aspects {
        if aspect.kind == AspectKind::Conjunction {
            // A conjunction's two ends sit side by side: a line would be a dot.
            continue;
        }
        let (Some(a), Some(b)) = (position_of(&aspect.a), position_of(&aspect.b)) else {
            continue;
        };
        let (x1, y1) = at(a, asc, R_ASPECT);
        let (x2, y2) = at(b, asc, R_ASPECT);
        let _ = write!(
            out,
            r#"<line class="{}" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}"/>"#,
            aspect_class(aspect.kind)
        );
    }
    out.push_str("</g>");
}

/// Marker glyphs at their spread positions, leaders to the true positions, degree labels.
fn planets(out: &mut String, markers: &[Marker], asc: f64) {
    // Planet glyphs at their spread positions, a leader to the true position, degree labels.
    let mut leaders = String::new();
    out.push_str(r#"<g class="g">"#);
    for m in markers {
        let (gx, gy) = at(m.shown, asc, R_PLANET);
        use_glyph(out, m.glyph, gx, gy, GLYPH_SIZE);
        let (tx, ty) = at(m.longitude, asc, R_HOUSE_INNER);
        let (lx, ly) = at(m.shown, asc, R_PLANET + GLYPH_SIZE / 2.0 + 2.0);
        let _ = write!(leaders, "M{tx:.1} {ty:.1}L{lx:.1} {ly:.1}");
    }
    out.push_str("</g>");
    let _ = write!(out, r#"<path class="ink c" d="{leaders}"/>"#);
    for m in markers {
        let (x, y) = at(m.shown, asc, R_LABEL);
        let retro = if m.retrograde { " R" } else { "" };
        let _ = write!(
            out,
            r#"<text class="txt s" x="{x:.1}" y="{:.1}" text-anchor="middle">{}{retro}</text>"#,
            y + 3.0,
            degree_label(m.longitude)
        );
    }
}

/// The legend: title, instant and house system, every marker with its position, the aspect colours.
fn legend(out: &mut String, chart: &Chart, markers: &[Marker], options: &WheelOptions) {
    // Legend: title, every marker with its position, the aspect colours.
    let mut y = 2.0 * CY + 22.0;
    if let Some(title) = &options.title {
        let _ = write!(
            out,
            r#"<text class="txt h" x="20" y="{y:.0}">{}</text>"#,
            xml_escape(title)
        );
    }
    let _ = write!(
        out,
        r#"<text class="dim s" x="660" y="{y:.0}" text-anchor="end">{} · {}</text>"#,
        xml_escape(&chart.utc),
        chart.house_system.as_str()
    );
    y += 14.0;
    let mut legend = markers.to_vec();
    legend.sort_by_key(|m| {
        chart
            .bodies
            .iter()
            .position(|b| b.name.as_str() == m.label)
            .unwrap_or(usize::MAX)
    });
    for (i, m) in legend.iter().enumerate() {
        let column = (i % LEGEND_COLUMNS) as f64;
        let row = (i / LEGEND_COLUMNS) as f64;
        let x = 20.0 + column * 215.0;
        let top = y + row * 24.0;
        out.push_str(r#"<g class="g">"#);
        use_glyph(out, m.glyph, x + 8.0, top + 8.0, 16.0);
        out.push_str("</g>");
        let sign = SIGNS[((m.longitude.rem_euclid(360.0) / 30.0) as usize).min(11)];
        let _ = write!(
            out,
            r#"<text class="txt t" x="{:.0}" y="{:.0}">{} {} {}{}</text>"#,
            x + 20.0,
            top + 12.0,
            m.label.replace('_', " "),
            degree_label(m.longitude),
            sign,
            if m.retrograde { " R" } else { "" }
        );
    }
    let rows = legend.len().div_ceil(LEGEND_COLUMNS) as f64;
    let top = y + rows * 24.0 + 6.0;
    for (i, (class, name)) in [
        ("a-conjunction", "conjunction"),
        ("a-opposition", "opposition"),
        ("a-square", "square"),
        ("a-trine", "trine"),
        ("a-sextile", "sextile"),
        ("a-minor", "minor"),
    ]
    .iter()
    .enumerate()
    {
        let x = 20.0 + i as f64 * 110.0;
        let _ = write!(
            out,
            r#"<line class="{class}" stroke-width="2" x1="{x:.0}" y1="{top:.0}" x2="{:.0}" y2="{top:.0}"/><text class="txt t" x="{:.0}" y="{:.0}">{name}</text>"#,
            x + 22.0,
            x + 28.0,
            top + 4.0
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn text_outside_xml_chars_never_reaches_the_document() {
        let escaped = super::xml_escape("a\u{FFFE}b\u{FFFF}c\u{1}d\u{7}<e>\u{1F600}\r");
        assert_eq!(
            escaped,
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}&lt;e&gt;\u{1F600}\r"
        );
        assert!(escaped.chars().all(super::is_xml_char));
    }
    use orrery_astro::{ChartInput, compute_chart};

    fn chart() -> Chart {
        compute_chart(
            &ChartInput::from_json(
                r#"{"datetime":"1990-05-17T13:30:00Z","latitude":51.5,"longitude":-0.1}"#,
            )
            .unwrap(),
        )
        .unwrap()
    }

    fn marker(longitude: f64) -> Marker {
        Marker {
            glyph: "sun",
            label: "sun",
            longitude,
            shown: longitude,
            retrograde: false,
        }
    }

    #[test]
    fn spreading_keeps_every_glyph_apart_even_across_aries() {
        let mut markers: Vec<Marker> = [358.0, 359.0, 0.5, 1.0, 2.0, 100.0, 101.0, 250.0]
            .into_iter()
            .map(marker)
            .collect();
        spread(&mut markers, 7.5);
        let mut shown: Vec<f64> = markers.iter().map(|m| m.shown).collect();
        shown.sort_by(f64::total_cmp);
        for i in 0..shown.len() {
            let next = shown[(i + 1) % shown.len()];
            let gap = (next - shown[i]).rem_euclid(360.0);
            assert!(gap >= 7.5 - 1e-9, "{shown:?}");
        }
        // The lone marker does not move; a cluster stays centred on its mean.
        assert!(
            markers
                .iter()
                .any(|m| m.longitude == 250.0 && m.shown == 250.0)
        );
        let pair: Vec<f64> = markers
            .iter()
            .filter(|m| m.longitude > 99.0 && m.longitude < 102.0)
            .map(|m| m.shown)
            .collect();
        assert!((pair.iter().sum::<f64>() / 2.0 - 100.5).abs() < 1e-9);
    }

    #[test]
    fn the_wheel_is_well_formed_small_and_holds_every_body() {
        let chart = chart();
        for theme in [Theme::Light, Theme::Dark] {
            let svg = render(
                &chart,
                &WheelOptions {
                    theme,
                    title: Some("Ada <& \"Lovelace\">".into()),
                },
            );
            let doc = roxmltree::Document::parse(&svg).expect("valid XML");
            assert_eq!(doc.root_element().tag_name().name(), "svg");
            assert!(svg.len() < 60 * 1024, "{} bytes", svg.len());
            for body in &chart.bodies {
                let href = format!("#g-{}", body.name.as_str());
                assert!(
                    doc.descendants()
                        .any(|n| n.attribute("href") == Some(href.as_str())),
                    "{href}"
                );
                assert!(
                    doc.descendants()
                        .any(|n| n.attribute("id") == Some(&href[1..])),
                    "symbol {href} defined"
                );
            }
            for sign in SIGNS {
                assert!(svg.contains(&format!("#g-{sign}")));
            }
            assert!(svg.contains("ASC") && svg.contains(">MC<"));
            assert!(!svg.contains("NaN"));
        }
    }
}
