//! The bundled DejaVu Sans font, registered with plotters' `ab_glyph` text renderer.

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use crate::PlotError;

/// The font family name every figure draws its text with.
pub const FONT_FAMILY: &str = "sans-serif";

// Bundled so that rendering never depends on fonts installed on the machine.
// DejaVu Sans 2.37 (Debian fonts-dejavu-core); licence in assets/fonts/LICENSE-DejaVu.txt.
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

/// Registers the bundled fonts with plotters; cheap to call again, and called by every figure.
pub fn ensure_fonts() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();
    let outcome = REGISTERED.get_or_init(|| {
        register_font(FONT_FAMILY, FontStyle::Normal, DEJAVU_SANS).map_err(|_| "DejaVuSans.ttf")?;
        register_font(FONT_FAMILY, FontStyle::Bold, DEJAVU_SANS_BOLD)
            .map_err(|_| "DejaVuSans-Bold.ttf")?;
        Ok(())
    });
    outcome.map_err(|file| PlotError::Font { file })
}
