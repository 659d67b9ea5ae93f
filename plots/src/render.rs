//! Shared drawing machinery: output to PNG and SVG, page frame (title, legend), markers, text
//! styles, number formatting and input checks.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

use crate::PlotError;
use crate::fonts::{FONT_FAMILY, ensure_fonts};

/// Title text size (pixels).
pub(crate) const TITLE_SIZE: f64 = 30.0;
/// Axis description text size.
pub(crate) const AXIS_LABEL_SIZE: f64 = 25.0;
/// Tick label text size.
pub(crate) const TICK_SIZE: f64 = 21.0;
/// Legend text size.
pub(crate) const LEGEND_SIZE: f64 = 21.0;
/// Text size of annotations placed on the data (savings labels, cell text).
pub(crate) const ANNOTATION_SIZE: f64 = 18.0;
/// Width of data lines.
pub(crate) const LINE_WIDTH: u32 = 3;
/// Marker half-size in pixels.
pub(crate) const MARKER_RADIUS: i32 = 6;
/// Light grid colour.
pub(crate) const GRID_COLOUR: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
/// Colour of reference lines (SLO, target, crossovers).
pub(crate) const REFERENCE_COLOUR: RGBColor = RGBColor(0x44, 0x44, 0x44);

/// The two files a figure function wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedFigure {
    /// The raster image.
    pub png: PathBuf,
    /// The vector image.
    pub svg: PathBuf,
}

/// A drawing failure inside a backend, before the file it belongs to is known.
pub(crate) struct DrawFailure(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawFailure {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        DrawFailure(error.to_string())
    }
}

/// A validated figure that can draw itself on any plotters backend.
pub(crate) trait Figure {
    /// Image size in pixels (width, height).
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure onto `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure>;
}

/// Writes `figure` as `<dir>/<stem>.png` and `<dir>/<stem>.svg`.
pub(crate) fn render<F: Figure>(
    figure: &F,
    dir: &Path,
    stem: &str,
) -> Result<RenderedFigure, PlotError> {
    check_stem(stem)?;
    ensure_fonts()?;
    std::fs::create_dir_all(dir).map_err(|source| PlotError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let size = figure.size();
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_and_present(figure, &root).map_err(|DrawFailure(message)| PlotError::Render {
            path: png.clone(),
            message,
        })?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        draw_and_present(figure, &root).map_err(|DrawFailure(message)| PlotError::Render {
            path: svg.clone(),
            message,
        })?;
    }
    Ok(RenderedFigure { png, svg })
}

fn draw_and_present<F: Figure, DB: DrawingBackend>(
    figure: &F,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), DrawFailure> {
    figure.draw(root)?;
    root.present()?;
    Ok(())
}

fn check_stem(stem: &str) -> Result<(), PlotError> {
    let reason = if stem.is_empty() {
        Some("it is empty")
    } else if stem.contains(['/', '\\']) {
        Some("it contains a path separator; pass the directory separately")
    } else if stem == "." || stem == ".." {
        Some("it names a directory")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PlotError::InvalidStem {
            stem: stem.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A plain text style of the given size.
pub(crate) fn text(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT_FAMILY, size).into_font()).color(&BLACK)
}

/// A bold text style of the given size.
pub(crate) fn bold(size: f64) -> TextStyle<'static> {
    // Built with the style up front: `FontDesc::style` keeps the regular glyphs.
    TextStyle::from((FONT_FAMILY, size, FontStyle::Bold).into_font()).color(&BLACK)
}

/// `style` anchored at the given horizontal and vertical position.
pub(crate) fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// Sets the colour of a text style (plotters' own setter ties the style to a borrow).
pub(crate) trait WithColour {
    /// `self` drawn in `colour`.
    fn with_colour(self, colour: RGBColor) -> Self;
}

impl WithColour for TextStyle<'static> {
    fn with_colour(mut self, colour: RGBColor) -> Self {
        self.color = colour.to_backend_color();
        self
    }
}

/// A text style of the given size rotated to read bottom to top.
pub(crate) fn vertical_text(size: f64, colour: RGBColor) -> TextStyle<'static> {
    TextStyle::from(
        (FONT_FAMILY, size)
            .into_font()
            .transform(FontTransform::Rotate270),
    )
    .with_colour(colour)
}

/// Marker shapes, cycled per series so lines stay distinguishable in greyscale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkerShape {
    Circle,
    Square,
    TriangleUp,
    Diamond,
    TriangleDown,
}

impl MarkerShape {
    /// The shape of the `index`-th series.
    pub(crate) fn for_index(index: usize) -> Self {
        const ORDER: [MarkerShape; 5] = [
            MarkerShape::Circle,
            MarkerShape::Square,
            MarkerShape::TriangleUp,
            MarkerShape::Diamond,
            MarkerShape::TriangleDown,
        ];
        ORDER[index % ORDER.len()]
    }

    /// Outline in pixel offsets around the marker's centre; draw it as
    /// `EmptyElement::at(point) + Polygon::new(shape.outline(), colour.filled())`.
    pub(crate) fn outline(self) -> Vec<(i32, i32)> {
        let r = MARKER_RADIUS;
        match self {
            MarkerShape::Circle => (0..16)
                .map(|step| {
                    let angle = f64::from(step) * std::f64::consts::TAU / 16.0;
                    (
                        (f64::from(r) * angle.cos()).round() as i32,
                        (f64::from(r) * angle.sin()).round() as i32,
                    )
                })
                .collect(),
            MarkerShape::Square => {
                let s = r * 4 / 5;
                vec![(-s, -s), (s, -s), (s, s), (-s, s)]
            }
            MarkerShape::TriangleUp => vec![(0, -r - 1), (r + 1, r - 1), (-r - 1, r - 1)],
            MarkerShape::TriangleDown => vec![(0, r + 1), (r + 1, -r + 1), (-r - 1, -r + 1)],
            MarkerShape::Diamond => vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
        }
    }
}

/// What a legend entry shows beside its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swatch {
    /// A filled box (bars, areas, cells).
    Box,
    /// A solid line, optionally with a marker.
    Line(Option<MarkerShape>),
    /// A dashed line (reference lines).
    Dashed,
}

/// One legend entry.
#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub colour: RGBColor,
    pub swatch: Swatch,
}

const SWATCH_WIDTH: i32 = 38;
const SWATCH_GAP: i32 = 8;
const ENTRY_GAP: i32 = 30;
const LEGEND_ROW_HEIGHT: i32 = 32;
const TITLE_HEIGHT: i32 = 50;
const SIDE_MARGIN: i32 = 16;

/// Splits `entries` into centred rows that fit `width`; each row lists (entry, pixel width).
fn legend_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    width: i32,
) -> Result<Vec<Vec<(usize, i32)>>, DrawFailure> {
    let style = text(LEGEND_SIZE);
    let mut rows: Vec<Vec<(usize, i32)>> = Vec::new();
    let mut current: Vec<(usize, i32)> = Vec::new();
    let mut used = 0;
    for (index, entry) in entries.iter().enumerate() {
        let (text_width, _) = area.estimate_text_size(&entry.label, &style)?;
        let entry_width = SWATCH_WIDTH + SWATCH_GAP + text_width as i32;
        let needed = if current.is_empty() {
            entry_width
        } else {
            used + ENTRY_GAP + entry_width
        };
        if !current.is_empty() && needed > width {
            rows.push(std::mem::take(&mut current));
            used = entry_width;
        } else {
            used = needed;
        }
        current.push((index, entry_width));
    }
    if !current.is_empty() {
        rows.push(current);
    }
    Ok(rows)
}

fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entry: &LegendEntry,
    x: i32,
    y_mid: i32,
) -> Result<(), DrawFailure> {
    match entry.swatch {
        Swatch::Box => {
            let top_left = (x + 4, y_mid - 9);
            let bottom_right = (x + SWATCH_WIDTH - 4, y_mid + 9);
            area.draw(&Rectangle::new(
                [top_left, bottom_right],
                entry.colour.filled(),
            ))?;
            area.draw(&Rectangle::new(
                [top_left, bottom_right],
                RGBColor(0x33, 0x33, 0x33).stroke_width(1),
            ))?;
        }
        Swatch::Line(shape) => {
            area.draw(&PathElement::new(
                vec![(x, y_mid), (x + SWATCH_WIDTH, y_mid)],
                entry.colour.stroke_width(LINE_WIDTH),
            ))?;
            if let Some(shape) = shape {
                let centre = (x + SWATCH_WIDTH / 2, y_mid);
                let outline = shape
                    .outline()
                    .into_iter()
                    .map(|(dx, dy)| (centre.0 + dx, centre.1 + dy))
                    .collect::<Vec<_>>();
                area.draw(&Polygon::new(outline, entry.colour.filled()))?;
            }
        }
        Swatch::Dashed => {
            area.draw(&DashedPathElement::new(
                vec![(x, y_mid), (x + SWATCH_WIDTH, y_mid)],
                8,
                5,
                entry.colour.stroke_width(2),
            ))?;
        }
    }
    Ok(())
}

/// Fills `root` white, draws the title and a centred legend above the plot, and returns the
/// area left for the plot itself.
pub(crate) fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    legend: &[LegendEntry],
) -> Result<DrawingArea<DB, Shift>, DrawFailure> {
    root.fill(&WHITE)?;
    let (width, _) = root.dim_in_pixel();
    let width = width as i32;
    let mut rest = root.clone();
    if !title.is_empty() {
        let (top, below) = rest.split_vertically(TITLE_HEIGHT);
        top.draw_text(
            title,
            &anchored(bold(TITLE_SIZE), HPos::Center, VPos::Center),
            (width / 2, TITLE_HEIGHT / 2 + 4),
        )?;
        rest = below;
    }
    if !legend.is_empty() {
        let rows = legend_rows(&rest, legend, width - 2 * SIDE_MARGIN)?;
        let height = rows.len() as i32 * LEGEND_ROW_HEIGHT + 8;
        let (strip, below) = rest.split_vertically(height);
        let style = anchored(text(LEGEND_SIZE), HPos::Left, VPos::Center);
        for (row_index, row) in rows.iter().enumerate() {
            let row_width: i32 =
                row.iter().map(|(_, w)| *w).sum::<i32>() + ENTRY_GAP * (row.len() as i32 - 1);
            let mut x = (width - row_width) / 2;
            let y_mid = 4 + row_index as i32 * LEGEND_ROW_HEIGHT + LEGEND_ROW_HEIGHT / 2;
            for (entry_index, entry_width) in row {
                let entry = &legend[*entry_index];
                draw_swatch(&strip, entry, x, y_mid)?;
                strip.draw_text(&entry.label, &style, (x + SWATCH_WIDTH + SWATCH_GAP, y_mid))?;
                x += entry_width + ENTRY_GAP;
            }
        }
        rest = below;
    }
    Ok(rest.margin(4, 8, 8, SIDE_MARGIN))
}

/// Formats a number compactly for ticks and labels: few digits, k/M/G suffixes for large values.
pub(crate) fn format_number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{}G", format_plain(value / 1e9))
    } else if magnitude >= 1e6 {
        format!("{}M", format_plain(value / 1e6))
    } else if magnitude >= 1e4 {
        format!("{}k", format_plain(value / 1e3))
    } else {
        format_plain(value)
    }
}

/// A number with about three significant digits and no trailing zeros.
fn format_plain(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return if value.is_finite() {
            "0".to_string()
        } else {
            value.to_string()
        };
    }
    let decimals = (2 - value.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".to_string() } else { text }
}

/// The label of a categorical tick at `value`: the category whose index `value` rounds to.
pub(crate) fn category_label(labels: &[String], value: f64) -> String {
    let index = value.round();
    if (value - index).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    labels.get(index as usize).cloned().unwrap_or_default()
}

/// Axis tick label: integers only (for counts).
pub(crate) fn integer_label(value: f64) -> String {
    if (value - value.round()).abs() < 1e-6 {
        format!("{}", value.round() as i64)
    } else {
        String::new()
    }
}

/// Input checks that produce `PlotError`s naming the figure and field.
pub(crate) struct Check {
    pub figure: &'static str,
}

impl Check {
    pub(crate) fn non_empty<T>(&self, field: &str, items: &[T]) -> Result<(), PlotError> {
        if items.is_empty() {
            return Err(PlotError::EmptyData {
                figure: self.figure,
                field: field.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) fn same_len(
        &self,
        field: String,
        expected: usize,
        found: usize,
    ) -> Result<(), PlotError> {
        if expected != found {
            return Err(PlotError::LengthMismatch {
                figure: self.figure,
                field,
                expected,
                found,
            });
        }
        Ok(())
    }

    pub(crate) fn invalid(&self, field: String, value: String, expected: &str) -> PlotError {
        PlotError::InvalidValue {
            figure: self.figure,
            field,
            value,
            expected: expected.to_string(),
        }
    }

    /// A finite value that is at least zero.
    pub(crate) fn non_negative(&self, field: String, value: f64) -> Result<(), PlotError> {
        if !value.is_finite() || value < 0.0 {
            return Err(self.invalid(field, value.to_string(), "a finite number >= 0"));
        }
        Ok(())
    }

    /// A finite value in [0, 1].
    pub(crate) fn fraction(&self, field: String, value: f64) -> Result<(), PlotError> {
        if !value.is_finite() || !(0.0..=1.0).contains(&value) {
            return Err(self.invalid(field, value.to_string(), "a fraction in [0, 1]"));
        }
        Ok(())
    }

    /// Finite, non-negative and strictly increasing values (an x axis).
    pub(crate) fn increasing(&self, field: &str, values: &[f64]) -> Result<(), PlotError> {
        for (index, value) in values.iter().enumerate() {
            self.non_negative(format!("{field}[{index}]"), *value)?;
            if index > 0 && *value <= values[index - 1] {
                return Err(self.invalid(
                    format!("{field}[{index}]"),
                    value.to_string(),
                    &format!(
                        "a value greater than the previous one ({})",
                        values[index - 1]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Non-empty names, none repeated.
    pub(crate) fn distinct_names<'a>(
        &self,
        field: &str,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<(), PlotError> {
        let mut seen: Vec<&str> = Vec::new();
        for (index, name) in names.enumerate() {
            if name.trim().is_empty() {
                return Err(self.invalid(
                    format!("{field}[{index}]"),
                    format!("{name:?}"),
                    "a non-empty name",
                ));
            }
            if seen.contains(&name) {
                return Err(self.invalid(
                    format!("{field}[{index}]"),
                    format!("{name:?}"),
                    "a name not used by an earlier entry",
                ));
            }
            seen.push(name);
        }
        Ok(())
    }
}

/// The largest of `values`, or `fallback` when there are none.
pub(crate) fn max_or(values: impl Iterator<Item = f64>, fallback: f64) -> f64 {
    values
        .fold(None, |best: Option<f64>, value| {
            Some(best.map_or(value, |best| best.max(value)))
        })
        .unwrap_or(fallback)
}

/// Height of the area under a chart holding x tick labels and the x description.
pub(crate) const X_LABEL_AREA: u32 = 72;
/// Width of the area left of a chart holding y tick labels and the y description.
pub(crate) const Y_LABEL_AREA: u32 = 100;
/// Margin around each chart inside its area.
pub(crate) const CHART_MARGIN: u32 = 10;

/// Approximate plotting-area size (width, height) in pixels of a chart built on `area` with the
/// standard label areas; used to reserve room for labels before the chart exists.
pub(crate) fn plot_size<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> (i32, i32) {
    let (width, height) = area.dim_in_pixel();
    (
        width as i32 - (Y_LABEL_AREA + 2 * CHART_MARGIN) as i32,
        height as i32 - (X_LABEL_AREA + 2 * CHART_MARGIN) as i32,
    )
}

/// A linear chart with the standard margins and label areas.
pub(crate) fn linear_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_label_area: u32,
) -> Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    DrawFailure,
> {
    Ok(ChartBuilder::on(area)
        .margin(CHART_MARGIN)
        .x_label_area_size(x_label_area)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x, y)?)
}

/// Applies the house style (light grid, black axes, readable text) to a mesh.
pub(crate) fn house_style<'m, 'a, 'b, X, Y, DB>(
    mesh: &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
    DB: DrawingBackend,
{
    mesh.bold_line_style(GRID_COLOUR.stroke_width(1))
        .max_light_lines(0)
        .axis_style(BLACK.stroke_width(2))
        .label_style(text(TICK_SIZE))
        .axis_desc_style(text(AXIS_LABEL_SIZE))
}

/// A darker edge for a bar of `colour`, so pale fills (yellow) stay visible on white.
pub(crate) fn bar_edge(colour: RGBColor) -> ShapeStyle {
    crate::palette::shade(colour, -0.4).stroke_width(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_compact() {
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(1.5), "1.5");
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(2500.0), "2500");
        assert_eq!(format_number(25_000.0), "25k");
        assert_eq!(format_number(1_500_000.0), "1.5M");
        assert_eq!(format_number(-3.0), "-3");
    }

    #[test]
    fn category_labels_only_at_integers() {
        let labels = vec!["a".to_string(), "b".to_string()];
        assert_eq!(category_label(&labels, 1.0), "b");
        assert_eq!(category_label(&labels, 0.5), "");
        assert_eq!(category_label(&labels, 2.0), "");
        assert_eq!(category_label(&labels, -1.0), "");
    }
}
