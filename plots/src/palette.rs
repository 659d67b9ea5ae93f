//! Colours: a fixed colour per GPU type shared by every figure, and colour-blind-safe series colours.
//!
//! The first seven GPU colours are the Okabe–Ito palette (Okabe & Ito, "Color Universal Design",
//! 2008), designed to stay distinguishable under the common colour-vision deficiencies. Okabe–Ito
//! has only eight colours, so the remaining types take colours from Paul Tol's "muted" qualitative
//! scheme (https://personal.sron.nl/~pault/), also designed for colour-blind readers; types that
//! rarely share a figure share similar hues. Black is reserved for the mixed fleet.

use plotters::style::RGBColor;

/// The eight Okabe–Ito colours, in their published order.
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xF0, 0xE4, 0x42), // yellow
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
];

/// Colour of the mixed (heterogeneous, "Mélange") fleet.
pub const MIXED_COLOUR: RGBColor = RGBColor(0x00, 0x00, 0x00);

/// Fill of heat-map cells that have no data.
pub const NO_DATA_COLOUR: RGBColor = RGBColor(0xE0, 0xE0, 0xE0);

/// The known GPU types and their fixed colours, in catalogue order.
pub const GPU_COLOURS: [(&str, RGBColor); 12] = [
    ("T4", RGBColor(0xF0, 0xE4, 0x42)),        // Okabe–Ito yellow
    ("L4", RGBColor(0x00, 0x9E, 0x73)),        // Okabe–Ito bluish green
    ("A10G", RGBColor(0xE6, 0x9F, 0x00)),      // Okabe–Ito orange
    ("V100-16GB", RGBColor(0xCC, 0x66, 0x77)), // Tol rose
    ("A100-40GB", RGBColor(0x56, 0xB4, 0xE9)), // Okabe–Ito sky blue
    ("A100-80GB", RGBColor(0x00, 0x72, 0xB2)), // Okabe–Ito blue
    ("L40S", RGBColor(0x99, 0x99, 0x33)),      // Tol olive
    ("H100-SXM", RGBColor(0xD5, 0x5E, 0x00)),  // Okabe–Ito vermillion
    ("H100-PCIe", RGBColor(0xCC, 0x79, 0xA7)), // Okabe–Ito reddish purple
    ("H200", RGBColor(0x88, 0x22, 0x55)),      // Tol wine
    ("MI300X", RGBColor(0x33, 0x22, 0x88)),    // Tol indigo
    ("B200", RGBColor(0x44, 0xAA, 0x99)),      // Tol teal
];

/// Names (normalised) that denote the mixed fleet.
const MIXED_NAMES: [&str; 4] = ["mixed", "mélange", "melange", "mix"];

/// Colours for GPU names outside the table: Tol colours not used above, so they never repeat a
/// known type's colour.
const FALLBACK_COLOURS: [RGBColor; 6] = [
    RGBColor(0x88, 0xCC, 0xEE), // Tol cyan
    RGBColor(0xAA, 0x44, 0x99), // Tol purple
    RGBColor(0x11, 0x77, 0x33), // Tol green
    RGBColor(0xDD, 0xCC, 0x77), // Tol sand
    RGBColor(0x66, 0x11, 0x00), // Tol dark red
    RGBColor(0x66, 0x99, 0xCC), // Tol light blue
];

/// Series colours for things that are not GPU types (policies, fleets): Okabe–Ito, most
/// legible on white first, yellow last.
const SERIES_ORDER: [usize; 8] = [5, 6, 3, 1, 7, 2, 0, 4];

/// Lower-cases and drops separators and any replica suffix ("A10G#0" → "a10g").
fn normalise(name: &str) -> String {
    let base = name.split('#').next().unwrap_or(name);
    base.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The GPU type of a replica name: the part before `#` ("A10G#0" → "A10G").
pub fn gpu_type_of_replica(replica: &str) -> &str {
    replica.split('#').next().unwrap_or(replica)
}

/// Whether `name` denotes the mixed fleet ("mixed", "Mélange", ...).
pub fn is_mixed(name: &str) -> bool {
    let key = normalise(name);
    MIXED_NAMES.contains(&key.as_str())
}

/// Whether `name` is a GPU type with a fixed colour (case and separators ignored).
pub fn is_known_gpu(name: &str) -> bool {
    let key = normalise(name);
    GPU_COLOURS.iter().any(|(gpu, _)| normalise(gpu) == key)
}

/// The fixed colour of a GPU type, the mixed fleet, or a stable fallback for an unknown name.
pub fn gpu_colour(name: &str) -> RGBColor {
    let key = normalise(name);
    if MIXED_NAMES.contains(&key.as_str()) {
        return MIXED_COLOUR;
    }
    if let Some((_, colour)) = GPU_COLOURS.iter().find(|(gpu, _)| normalise(gpu) == key) {
        return *colour;
    }
    // FNV-1a rather than std's hasher: its output is specified, so the colour never changes
    // between Rust releases.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    FALLBACK_COLOURS[(hash % FALLBACK_COLOURS.len() as u64) as usize]
}

/// The colour of the `index`-th series when series are not GPU types.
pub fn series_colour(index: usize) -> RGBColor {
    OKABE_ITO[SERIES_ORDER[index % SERIES_ORDER.len()]]
}

/// Colours for a set of named series: GPU colours when every name is a known GPU type or the
/// mixed fleet (so colours match the other figures), else series colours by position.
pub fn colours_for(names: &[String]) -> Vec<RGBColor> {
    if names
        .iter()
        .all(|name| is_known_gpu(name) || is_mixed(name))
    {
        names.iter().map(|name| gpu_colour(name)).collect()
    } else {
        (0..names.len()).map(series_colour).collect()
    }
}

/// Black or white, whichever reads better on `background`.
pub fn text_colour_on(background: RGBColor) -> RGBColor {
    let RGBColor(red, green, blue) = background;
    let luma = 0.299 * f64::from(red) + 0.587 * f64::from(green) + 0.114 * f64::from(blue);
    if luma > 140.0 {
        RGBColor(0, 0, 0)
    } else {
        RGBColor(0xFF, 0xFF, 0xFF)
    }
}

/// `colour` moved towards white (`amount` > 0) or black (`amount` < 0); `amount` in [-1, 1].
pub fn shade(colour: RGBColor, amount: f64) -> RGBColor {
    let amount = amount.clamp(-1.0, 1.0);
    let channel = |value: u8| -> u8 {
        let value = f64::from(value);
        let target = if amount >= 0.0 { 255.0 } else { 0.0 };
        (value + (target - value) * amount.abs()).round() as u8
    };
    RGBColor(channel(colour.0), channel(colour.1), channel(colour.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_have_distinct_colours() {
        for (i, (_, a)) in GPU_COLOURS.iter().enumerate() {
            for (_, b) in &GPU_COLOURS[i + 1..] {
                assert_ne!(a, b);
            }
            assert_ne!(*a, MIXED_COLOUR);
        }
    }

    #[test]
    fn lookup_ignores_case_separators_and_replica_suffix() {
        assert_eq!(gpu_colour("a100_80gb"), gpu_colour("A100-80GB"));
        assert_eq!(gpu_colour("A10G#3"), gpu_colour("A10G"));
        assert_eq!(gpu_colour("Mélange"), MIXED_COLOUR);
        assert_eq!(gpu_type_of_replica("H100-SXM#12"), "H100-SXM");
    }

    #[test]
    fn unknown_names_get_stable_colours_outside_the_table() {
        let first = gpu_colour("Gaudi3");
        assert_eq!(first, gpu_colour("gaudi3"));
        assert!(GPU_COLOURS.iter().all(|(_, known)| *known != first));
        assert!(!is_known_gpu("Gaudi3"));
    }

    #[test]
    fn series_colours_fall_back_when_a_name_is_not_a_gpu() {
        let gpus = vec!["L4".to_string(), "mixed".to_string()];
        assert_eq!(colours_for(&gpus), vec![gpu_colour("L4"), MIXED_COLOUR]);
        let policies = vec!["round-robin".to_string(), "L4".to_string()];
        assert_eq!(
            colours_for(&policies),
            vec![series_colour(0), series_colour(1)]
        );
    }

    #[test]
    fn shade_moves_towards_white_or_black() {
        assert_eq!(shade(RGBColor(100, 100, 100), 1.0), RGBColor(255, 255, 255));
        assert_eq!(shade(RGBColor(100, 100, 100), -1.0), RGBColor(0, 0, 0));
        assert_eq!(text_colour_on(RGBColor(0, 0, 0)), RGBColor(255, 255, 255));
        assert_eq!(
            text_colour_on(RGBColor(0xF0, 0xE4, 0x42)),
            RGBColor(0, 0, 0)
        );
    }
}
