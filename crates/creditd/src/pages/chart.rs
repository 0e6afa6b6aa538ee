//! Usage as a stacked bar chart drawn server-side in SVG: one bar per UTC day, one colour per
//! feature, so it works without JavaScript. The legend and a data table are plain HTML beside
//! it, which is what screen readers and narrow screens need.

use std::fmt::Write;

use creditd_domain::Credits;
use creditd_store::{UsageBucket, SECONDS_PER_DAY};

use super::escape;
use super::format;
use crate::clock::iso_date;

/// Features drawn in their own colour; the rest are summed as "other".
pub const MAX_SERIES: usize = 6;
/// Distinguishable with the common colour-vision deficiencies (Okabe–Ito), all ≥ 3:1 on white.
const PALETTE: [&str; MAX_SERIES] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#8a6d00", "#56748f"];
const OTHER_COLOUR: &str = "#6b6b6b";

const WIDTH: i64 = 600;
const HEIGHT: i64 = 230;
const LEFT: i64 = 52;
const RIGHT: i64 = 24;
const TOP: i64 = 12;
const BOTTOM: i64 = 30;

/// One feature's daily amounts, aligned with the chart's days.
pub struct Series {
    pub name: String,
    pub colour: &'static str,
    pub micros: Vec<i64>,
}

/// The chart's data: `days` start times (UTC midnight), and series stacked in order.
pub struct UsageChart {
    pub days: Vec<i64>,
    pub series: Vec<Series>,
}

impl UsageChart {
    /// `days` consecutive days ending with the one holding `now`.
    pub fn build(buckets: &[UsageBucket], now: i64, days: i64) -> UsageChart {
        let today = now.div_euclid(SECONDS_PER_DAY) * SECONDS_PER_DAY;
        let day_list: Vec<i64> = (0..days).map(|i| today - (days - 1 - i) * SECONDS_PER_DAY).collect();
        // Features by total spent, largest first; ties by name so the colours are stable.
        let buckets: Vec<&UsageBucket> = buckets.iter().filter(|b| day_list.contains(&b.day)).collect();
        let mut totals: Vec<(String, i64)> = Vec::new();
        for b in &buckets {
            let name = feature_name(b);
            match totals.iter_mut().find(|(n, _)| *n == name) {
                Some((_, t)) => *t += b.credits.micros(),
                None => totals.push((name, b.credits.micros())),
            }
        }
        totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let named = if totals.len() > MAX_SERIES {
            MAX_SERIES - 1
        } else {
            totals.len()
        };
        let mut series: Vec<Series> = totals[..named]
            .iter()
            .enumerate()
            .map(|(i, (name, _))| Series {
                name: name.clone(),
                colour: PALETTE[i],
                micros: vec![0; day_list.len()],
            })
            .collect();
        if totals.len() > named {
            series.push(Series {
                name: "other".into(),
                colour: OTHER_COLOUR,
                micros: vec![0; day_list.len()],
            });
        }
        for b in &buckets {
            let Some(day) = day_list.iter().position(|d| *d == b.day) else {
                continue;
            };
            let name = feature_name(b);
            let index = series.iter().position(|s| s.name == name).unwrap_or(series.len() - 1);
            series[index].micros[day] += b.credits.micros();
        }
        UsageChart { days: day_list, series }
    }

    pub fn total(&self) -> Credits {
        Credits::from_micros(self.series.iter().flat_map(|s| &s.micros).sum())
    }

    fn day_total(&self, day: usize) -> i64 {
        self.series.iter().map(|s| s.micros[day]).sum()
    }

    /// The SVG, its legend and a table of the same numbers.
    pub fn render(&self) -> String {
        let max = (0..self.days.len()).map(|d| self.day_total(d)).max().unwrap_or(0);
        let top = nice_ceiling(max);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let slot = plot_w as f64 / self.days.len().max(1) as f64;
        let bar = (slot * 0.7).max(1.0);
        let first = self.days.first().map_or(String::new(), |d| iso_date(*d));
        let last = self.days.last().map_or(String::new(), |d| iso_date(*d));
        let busiest = (0..self.days.len()).max_by_key(|d| self.day_total(*d));
        let mut desc = format!("{} credits spent from {first} to {last}", format::credits(self.total()));
        if let Some(d) = busiest.filter(|d| self.day_total(*d) > 0) {
            let _ = write!(
                desc,
                "; the busiest day was {} with {} credits",
                iso_date(self.days[d]),
                format::credits(Credits::from_micros(self.day_total(d)))
            );
        }
        let mut svg = format!(
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"usage-title usage-desc\" \
             xmlns=\"http://www.w3.org/2000/svg\"><title id=\"usage-title\">Credits spent per day, by feature</title>\
             <desc id=\"usage-desc\">{}</desc>",
            escape(&desc)
        );
        // Horizontal grid lines with their values: zero, half and the top.
        for step in 0..=2 {
            let value = top * step / 2;
            let y = TOP + plot_h - plot_h * step / 2;
            let _ = write!(
                svg,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#d0d4da\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"16\" fill=\"#3d4450\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6,
                y + 5,
                format::credits(Credits::from_micros(value))
            );
        }
        for (d, day) in self.days.iter().enumerate() {
            let x = LEFT as f64 + slot * d as f64 + (slot - bar) / 2.0;
            let mut y = (TOP + plot_h) as f64;
            for s in &self.series {
                let v = s.micros[d];
                if v <= 0 || top == 0 {
                    continue;
                }
                let h = (v as f64 / top as f64 * plot_h as f64).max(1.0);
                y -= h;
                let _ = write!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{}\">\
                     <title>{} · {}: {} credits</title></rect>",
                    s.colour,
                    iso_date(*day),
                    escape(&s.name),
                    format::credits(Credits::from_micros(v))
                );
            }
            // A date under every 7th bar, counted back from today so today is always labelled.
            if (self.days.len() - 1 - d).is_multiple_of(7) {
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"16\" fill=\"#3d4450\">{}</text>",
                    x + bar / 2.0,
                    HEIGHT - 8,
                    &iso_date(*day)[5..]
                );
            }
        }
        svg.push_str("</svg>");
        format!("{svg}{}{}", self.legend(), self.table())
    }

    fn legend(&self) -> String {
        let mut out = String::from("<ul class=\"legend\" aria-label=\"Features\">");
        for s in &self.series {
            let total: i64 = s.micros.iter().sum();
            let _ = write!(
                out,
                "<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/></svg> \
                 {} <span class=\"muted\">{} credits</span></li>",
                s.colour,
                escape(&s.name),
                format::credits(Credits::from_micros(total))
            );
        }
        out.push_str("</ul>");
        out
    }

    /// The days with usage as a table, for screen readers and for exact numbers.
    fn table(&self) -> String {
        let mut out = String::from(
            "<details><summary>Usage as a table</summary><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Day (UTC)</th>",
        );
        for s in &self.series {
            let _ = write!(out, "<th scope=\"col\" class=\"num\">{}</th>", escape(&s.name));
        }
        out.push_str("<th scope=\"col\" class=\"num\">Total</th></tr></thead><tbody>");
        for (d, day) in self.days.iter().enumerate().rev() {
            if self.day_total(d) == 0 {
                continue;
            }
            let _ = write!(out, "<tr><th scope=\"row\">{}</th>", iso_date(*day));
            for s in &self.series {
                let _ = write!(
                    out,
                    "<td class=\"num\">{}</td>",
                    format::credits_exact(Credits::from_micros(s.micros[d]))
                );
            }
            let _ = write!(
                out,
                "<td class=\"num\">{}</td></tr>",
                format::credits_exact(Credits::from_micros(self.day_total(d)))
            );
        }
        out.push_str("</tbody></table></div></details>");
        out
    }
}

fn feature_name(bucket: &UsageBucket) -> String {
    bucket.feature.clone().unwrap_or_else(|| "unnamed".into())
}

/// The smallest 1, 2 or 5 × 10ⁿ whole credits at or above `micros` (an axis top people read easily).
fn nice_ceiling(micros: i64) -> i64 {
    if micros <= 0 {
        return 0;
    }
    let mut unit: i64 = 10_000; // 0.01 credits
    loop {
        for m in [1, 2, 5] {
            if unit * m >= micros {
                return unit * m;
            }
        }
        unit *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = SECONDS_PER_DAY;

    fn bucket(day: i64, feature: &str, credits: i64) -> UsageBucket {
        UsageBucket {
            day: day * DAY,
            feature: Some(feature.into()),
            credits: Credits::from_micros(credits * 1_000_000),
            requests: 1,
        }
    }

    #[test]
    fn stacks_features_per_day_and_folds_the_smallest_into_other() {
        let now = 100 * DAY + 3600;
        let mut buckets = vec![bucket(100, "chat", 10), bucket(99, "chat", 5), bucket(100, "image", 3)];
        for (i, f) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            buckets.push(bucket(98, f, 1 + i as i64));
        }
        buckets.push(bucket(10, "too-old", 50));
        let chart = UsageChart::build(&buckets, now, 30);
        assert_eq!(chart.days.len(), 30);
        assert_eq!(*chart.days.last().unwrap(), 100 * DAY);
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["chat", "e", "d", "c", "image", "other"]);
        assert_eq!(chart.series[5].micros[27], 3_000_000, "a and b fold into other");
        assert_eq!(
            chart.total(),
            Credits::from_micros(33_000_000),
            "days outside the window are left out"
        );
        let html = chart.render();
        assert!(html.contains("<title id=\"usage-title\">"));
        assert!(html.contains("33 credits spent"));
        assert!(html.contains("busiest day was 1970-04-09 with 15 credits"), "{html}");
        assert_eq!(html.matches("<rect x=").count(), 7);
        assert!(html.contains("<th scope=\"col\" class=\"num\">chat</th>"));
    }

    #[test]
    fn an_empty_chart_draws_axes_without_bars_and_escapes_names() {
        let chart = UsageChart::build(&[], 5 * DAY, 30);
        let html = chart.render();
        assert!(!html.contains("<rect x="));
        let odd = UsageChart::build(&[bucket(5, "<b>", 1)], 5 * DAY, 30).render();
        assert!(odd.contains("&lt;b&gt;") && !odd.contains("<b>"));
    }

    #[test]
    fn axis_tops_are_round_numbers() {
        assert_eq!(nice_ceiling(0), 0);
        assert_eq!(nice_ceiling(1), 10_000);
        assert_eq!(nice_ceiling(15_000_000), 20_000_000);
        assert_eq!(nice_ceiling(20_000_000), 20_000_000);
        assert_eq!(nice_ceiling(21_000_000), 50_000_000);
    }
}
