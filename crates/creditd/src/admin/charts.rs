//! Bar charts drawn on the server as inline SVG: no scripts, no external assets. Geometry
//! is integer arithmetic on the exact values. Each chart has a title and a description for
//! screen readers, a `<title>` per bar, and the pages print the same figures in a table.

use std::fmt::Write;

use crate::pages::escape;

/// One series: a name, a colour, and one value per bucket (already in display units:
/// minor units of money or micro-credits) with its formatted text.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<(i64, String)>,
}

const WIDTH: i64 = 640;
const HEIGHT: i64 = 200;
const LEFT: i64 = 8;
const TOP: i64 = 24;
const BOTTOM: i64 = 36;

/// Grouped bars: one group per label, one bar per series. Negative values draw as zero.
pub fn bars(id: &str, title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().map(|(v, _)| *v))
        .max()
        .unwrap_or(0)
        .max(1);
    let groups = labels.len().max(1) as i64;
    let plot_w = WIDTH - LEFT * 2;
    let group_w = plot_w / groups;
    let bar_w = ((group_w - 4) / series.len().max(1) as i64).max(1);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let mut svg = String::new();
    let desc = if labels.is_empty() {
        "No data in this range.".to_string()
    } else {
        format!(
            "{} from {} to {}; the table below lists every value.",
            series.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
            labels.first().map(String::as_str).unwrap_or(""),
            labels.last().map(String::as_str).unwrap_or("")
        )
    };
    let _ = write!(
        svg,
        "<svg role=\"img\" aria-labelledby=\"{id}-t {id}-d\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" \
         style=\"max-width:{WIDTH}px\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>",
        escape(title),
        escape(&desc),
        TOP + plot_h,
        WIDTH - LEFT,
        TOP + plot_h
    );
    // Legend across the top.
    let mut x = LEFT;
    for s in series {
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"13\">{}</text>",
            s.color,
            x + 14,
            escape(s.name)
        );
        x += 24 + 7 * s.name.len() as i64;
    }
    if labels.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">No data in this range</text>",
            WIDTH / 2,
            TOP + plot_h / 2
        );
    }
    // At most ~6 axis labels, so dates never overlap; every bar still has its own title.
    let label_every = labels.len().div_ceil(6).max(1);
    for (i, label) in labels.iter().enumerate() {
        let gx = LEFT + i as i64 * group_w + 2;
        for (j, s) in series.iter().enumerate() {
            let (value, text) = s.values.get(i).cloned().unwrap_or((0, String::new()));
            let h = (i128::from(value.max(0)) * i128::from(plot_h) / i128::from(max)) as i64;
            let _ = write!(
                svg,
                "<rect x=\"{}\" y=\"{}\" width=\"{bar_w}\" height=\"{h}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                gx + j as i64 * bar_w,
                TOP + plot_h - h,
                s.color,
                escape(label),
                escape(s.name),
                escape(&text)
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{gx}\" y=\"{}\">{}</text>",
                TOP + plot_h + 14,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Colours that stay apart for common colour-vision deficiencies (Okabe–Ito).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

#[cfg(test)]
mod tests {
    #[test]
    fn draws_accessible_bars_and_escapes_labels() {
        let series = [super::Series {
            name: "gross <usd>",
            color: "#000",
            values: vec![(100, "1.00".into()), (50, "0.50".into())],
        }];
        let svg = super::bars("c", "Revenue", &["a".into(), "b&".into()], &series);
        assert!(svg.contains("role=\"img\"") && svg.contains("<title id=\"c-t\">Revenue</title>"));
        assert!(svg.contains("height=\"140\"") && svg.contains("height=\"70\""), "{svg}");
        assert!(svg.contains("gross &lt;usd&gt;") && svg.contains("b&amp;"));
        assert!(super::bars("e", "Empty", &[], &series).contains("No data"));
    }
}
