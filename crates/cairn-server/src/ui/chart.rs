//! Charts as SVG, drawn by cairn: line and area over time, bars, a stacked waterfall, a
//! heat map, Kaplan–Meier step curves and a funnel. Each is a pure function from numbers
//! to a [`Chart`]: the SVG (axis labels, a legend, a `<title>` on every mark for hovering)
//! and the same numbers as a table the page shows beside it (in a `<details>`), so no
//! figure is only a picture. Colours come from classes (`s0`…`s5`, `up`, `down`) styled
//! by cairn.css; every label goes through the project's one escaper.

use std::fmt::Write as _;

use cairn_core::html::escape_html as esc;
use serde::Serialize;

/// Drawing area (SVG user units).
const W: f64 = 640.0;
const H: f64 = 260.0;
/// Margins: left (y labels), right, top, bottom (x labels and legend).
const ML: f64 = 56.0;
const MR: f64 = 16.0;
const MT: f64 = 16.0;
const MB: f64 = 48.0;
/// How many series colours cairn.css defines.
const COLOURS: usize = 6;

/// A drawn chart and its numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// What it shows (the SVG's accessible name and the table's caption).
    pub title: String,
    /// The SVG element, escaped and ready to embed.
    #[serde(skip)]
    pub svg: String,
    /// The numbers behind it.
    pub table: DataTable,
}

/// Numbers as rows and columns of text.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataTable {
    /// Column headings.
    pub head: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

/// How values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number.
    Number,
    /// A share in [0, 1], shown as a percentage.
    Share,
    /// An amount of money in currency units.
    Money,
}

impl Unit {
    /// `v` as text for labels and tables.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Number => number(v),
            Unit::Share => format!("{:.1}%", v * 100.0),
            Unit::Money => money(v),
        }
    }
}

/// A number with at most one decimal, without a trailing `.0`.
pub fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{:.0}", v) } else { format!("{:.1}", v) }
}

/// Money in currency units, shortened: 950, 12.3k, 4.5M.
pub fn money(v: f64) -> String {
    let a = v.abs();
    let sign = if v < 0.0 { "−" } else { "" };
    if a >= 1e6 {
        format!("{sign}{:.1}M", a / 1e6)
    } else if a >= 1e4 {
        format!("{sign}{:.0}k", a / 1e3)
    } else if a >= 1e3 {
        format!("{sign}{:.1}k", a / 1e3)
    } else {
        format!("{sign}{:.0}", a)
    }
}

/// A linear map from a domain onto a range of SVG coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    /// Maps `[d0, d1]` onto `[r0, r1]`; an empty domain maps everything to the range's middle.
    pub fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Scale {
        Scale { d0, d1, r0, r1 }
    }

    /// Where `v` lands.
    pub fn at(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span.abs() < f64::EPSILON || !span.is_finite() {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

/// Round tick values covering `[min, max]` with about `n` steps of 1, 2 or 5 × 10^k;
/// the first tick is at or below `min`, the last at or above `max`.
pub fn nice_ticks(min: f64, max: f64, n: usize) -> Vec<f64> {
    let (min, max) = if min.is_finite() && max.is_finite() { (min.min(max), max.max(min)) } else { (0.0, 1.0) };
    let (min, max) = if (max - min).abs() < 1e-12 {
        if min == 0.0 { (0.0, 1.0) } else { (min - min.abs() * 0.5, max + max.abs() * 0.5) }
    } else {
        (min, max)
    };
    let raw = (max - min) / n.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let first = (min / step).floor() * step;
    let mut ticks = Vec::new();
    let mut k = (first / step).round();
    // Up to the first tick at or above `max` (a tolerance for float noise).
    while ticks.len() < 50 {
        let t = k * step;
        ticks.push(t);
        if t >= max - step * 1e-9 {
            break;
        }
        k += 1.0;
    }
    ticks
}

/// One named series of values, one per x label (`None`: no value there).
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its values.
    pub values: Vec<Option<f64>>,
}

fn open(title: &str, height: f64) -> String {
    format!(
        r#"<svg class=chart viewBox="0 0 {W} {height}" role=img aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    )
}

fn y_axis(svg: &mut String, y: &Scale, ticks: &[f64], unit: Unit) {
    for t in ticks {
        let py = y.at(*t);
        let _ = write!(
            svg,
            r#"<line class=grid x1="{ML}" x2="{x2}" y1="{py:.1}" y2="{py:.1}"/><text class=tick x="{lx}" y="{ty:.1}" text-anchor=end>{label}</text>"#,
            x2 = W - MR,
            lx = ML - 6.0,
            ty = py + 4.0,
            label = esc(&unit.format(*t)),
        );
    }
}

/// As many x labels as fit side by side (about 6.5 units a character), evenly skipped.
fn x_labels(svg: &mut String, labels: &[String], x: impl Fn(usize) -> f64) {
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    let fit = (((W - ML - MR) / (widest * 6.5 + 12.0)).floor() as usize).max(1);
    let every = labels.len().div_ceil(fit).max(1);
    for (i, l) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            svg,
            r#"<text class=tick x="{:.1}" y="{}" text-anchor=middle>{}</text>"#,
            x(i),
            H - MB + 16.0,
            esc(l)
        );
    }
}

fn legend(svg: &mut String, names: &[&str], y: f64) {
    let mut x = ML;
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<rect class="s{} key" x="{x:.1}" y="{:.1}" width="10" height="10"/><text class=legend x="{:.1}" y="{:.1}">{}</text>"#,
            i % COLOURS,
            y - 9.0,
            x + 14.0,
            y,
            esc(name)
        );
        x += 24.0 + 7.0 * name.chars().count() as f64;
    }
}

fn domain(values: impl Iterator<Item = f64>, include_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if include_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    (lo, hi)
}

/// Lines (or filled areas) over x labels (usually days or months), from zero when
/// `from_zero`.
pub fn line(title: &str, x: &[String], series: &[Series], unit: Unit, area: bool, from_zero: bool) -> Chart {
    let (lo, hi) = domain(series.iter().flat_map(|s| s.values.iter().flatten().copied()), from_zero || area);
    let ticks = nice_ticks(lo, hi, 4);
    let y = Scale::new(ticks[0], ticks[ticks.len() - 1], H - MB, MT);
    let xs = Scale::new(0.0, x.len().saturating_sub(1) as f64, ML + 8.0, W - MR - 8.0);
    let mut svg = open(title, H);
    y_axis(&mut svg, &y, &ticks, unit);
    x_labels(&mut svg, x, |i| xs.at(i as f64));
    for (k, s) in series.iter().enumerate() {
        // A run of known values is one path; a gap starts a new one.
        let mut runs: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) if v.is_finite() => runs.last_mut().map_or((), |r| r.push((i, *v))),
                _ => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let pts: Vec<String> =
                run.iter().map(|(i, v)| format!("{:.1},{:.1}", xs.at(*i as f64), y.at(*v))).collect();
            if area && run.len() > 1 {
                let base = y.at(ticks[0].max(0.0).min(ticks[ticks.len() - 1]));
                let (first, last) = (run[0].0, run[run.len() - 1].0);
                let _ = write!(
                    svg,
                    r#"<path class="s{c} area" d="M{:.1},{base:.1}L{}L{:.1},{base:.1}Z"/>"#,
                    xs.at(first as f64),
                    pts.join("L"),
                    xs.at(last as f64),
                    c = k % COLOURS
                );
            }
            let _ = write!(svg, r#"<path class="s{} line" d="M{}"/>"#, k % COLOURS, pts.join("L"));
            for (i, v) in run {
                let _ = write!(
                    svg,
                    r#"<circle class="s{} dot" cx="{:.1}" cy="{:.1}" r="3"><title>{}: {} — {}</title></circle>"#,
                    k % COLOURS,
                    xs.at(*i as f64),
                    y.at(*v),
                    esc(&s.name),
                    esc(x.get(*i).map_or("", String::as_str)),
                    esc(&unit.format(*v))
                );
            }
        }
    }
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    legend(&mut svg, &names, H - 8.0);
    svg.push_str("</svg>");
    let mut head = vec![String::new()];
    head.extend(series.iter().map(|s| s.name.clone()));
    let rows = x
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut row = vec![l.clone()];
            row.extend(
                series.iter().map(|s| s.values.get(i).copied().flatten().map_or("–".into(), |v| unit.format(v))),
            );
            row
        })
        .collect();
    Chart { title: title.into(), svg, table: DataTable { head, rows } }
}

/// Vertical bars, one per label.
pub fn bars(title: &str, items: &[(String, f64)], unit: Unit) -> Chart {
    let (lo, hi) = domain(items.iter().map(|(_, v)| *v), true);
    let ticks = nice_ticks(lo, hi, 4);
    let y = Scale::new(ticks[0], ticks[ticks.len() - 1], H - MB, MT);
    let n = items.len().max(1) as f64;
    let band = (W - ML - MR) / n;
    let mut svg = open(title, H);
    y_axis(&mut svg, &y, &ticks, unit);
    let labels: Vec<String> = items.iter().map(|(l, _)| l.clone()).collect();
    x_labels(&mut svg, &labels, |i| ML + band * (i as f64 + 0.5));
    for (i, (label, v)) in items.iter().enumerate() {
        let (top, bottom) = (y.at(v.max(0.0)), y.at(v.min(0.0)));
        let _ = write!(
            svg,
            r#"<rect class="s0 bar" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"><title>{}: {}</title></rect>"#,
            ML + band * i as f64 + band * 0.15,
            band * 0.7,
            (bottom - top).max(0.5),
            esc(label),
            esc(&unit.format(*v))
        );
    }
    svg.push_str("</svg>");
    let rows = items.iter().map(|(l, v)| vec![l.clone(), unit.format(*v)]).collect();
    Chart { title: title.into(), svg, table: DataTable { head: vec![String::new(), "value".into()], rows } }
}

/// A waterfall: a starting total, steps up (`up`) and down (`down`) each starting where
/// the last ended, and the end total.
pub fn waterfall(title: &str, start: (&str, f64), steps: &[(String, f64)], end_label: &str, unit: Unit) -> Chart {
    let mut level = start.1;
    let mut bars: Vec<(String, f64, f64, &'static str)> = vec![(start.0.to_string(), 0.0, start.1, "total")];
    for (label, delta) in steps {
        let next = level + delta;
        bars.push((label.clone(), level, next, if *delta >= 0.0 { "up" } else { "down" }));
        level = next;
    }
    bars.push((end_label.to_string(), 0.0, level, "total"));
    let (lo, hi) = domain(bars.iter().flat_map(|b| [b.1, b.2]), true);
    let ticks = nice_ticks(lo, hi, 4);
    let y = Scale::new(ticks[0], ticks[ticks.len() - 1], H - MB, MT);
    let band = (W - ML - MR) / bars.len() as f64;
    let mut svg = open(title, H);
    y_axis(&mut svg, &y, &ticks, unit);
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    x_labels(&mut svg, &labels, |i| ML + band * (i as f64 + 0.5));
    for (i, (label, from, to, class)) in bars.iter().enumerate() {
        let (top, bottom) = (y.at(from.max(*to)), y.at(from.min(*to)));
        let shown = if *class == "total" { *to } else { to - from };
        let _ = write!(
            svg,
            r#"<rect class="{class} bar" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"><title>{}: {}</title></rect>"#,
            ML + band * i as f64 + band * 0.15,
            band * 0.7,
            (bottom - top).max(0.5),
            esc(label),
            esc(&unit.format(shown))
        );
    }
    svg.push_str("</svg>");
    let mut rows = vec![vec![start.0.to_string(), unit.format(start.1)]];
    rows.extend(steps.iter().map(|(l, d)| vec![l.clone(), unit.format(*d)]));
    rows.push(vec![end_label.to_string(), unit.format(level)]);
    Chart { title: title.into(), svg, table: DataTable { head: vec![String::new(), "amount".into()], rows } }
}

/// A heat map of shares in [0, 1] (rows × columns; `None` is an empty cell), each cell
/// shaded in one of five steps (`h0`…`h4`) and labelled.
pub fn heatmap(title: &str, rows: &[String], cols: &[String], cells: &[Vec<Option<f64>>]) -> Chart {
    let cell_w = ((W - 120.0) / cols.len().max(1) as f64).min(48.0);
    let cell_h = 22.0;
    let height = MT + 20.0 + cell_h * rows.len() as f64 + 8.0;
    let mut svg = open(title, height);
    for (j, c) in cols.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text class=tick x="{:.1}" y="{}" text-anchor=middle>{}</text>"#,
            120.0 + cell_w * (j as f64 + 0.5),
            MT + 10.0,
            esc(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let top = MT + 20.0 + cell_h * i as f64;
        let _ = write!(svg, r#"<text class=tick x="112" y="{:.1}" text-anchor=end>{}</text>"#, top + 15.0, esc(r));
        for (j, v) in cells.get(i).into_iter().flatten().enumerate() {
            let Some(v) = v else { continue };
            let shade = ((v.clamp(0.0, 1.0) * 5.0).floor() as usize).min(4);
            let x = 120.0 + cell_w * j as f64;
            let _ = write!(
                svg,
                r#"<rect class="h{shade}" x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"><title>{} · {}: {}</title></rect><text class="cell{}" x="{:.1}" y="{:.1}" text-anchor=middle>{:.0}</text>"#,
                cell_w - 1.0,
                cell_h - 1.0,
                esc(r),
                esc(cols.get(j).map_or("", String::as_str)),
                esc(&Unit::Share.format(*v)),
                if shade >= 3 { " light" } else { "" },
                x + cell_w / 2.0,
                top + 15.0,
                v * 100.0
            );
        }
    }
    svg.push_str("</svg>");
    let mut head = vec![String::new()];
    head.extend(cols.iter().cloned());
    let table_rows = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = vec![r.clone()];
            row.extend(cells.get(i).into_iter().flatten().map(|v| v.map_or(String::new(), |v| Unit::Share.format(v))));
            row
        })
        .collect();
    Chart { title: title.into(), svg, table: DataTable { head, rows: table_rows } }
}

/// A step curve: the share still surviving (y in [0, 1]) after `t` (x, e.g. days).
#[derive(Debug, Clone)]
pub struct Curve {
    /// Its name in the legend.
    pub name: String,
    /// (t, survival) in increasing t, starting where the curve starts.
    pub points: Vec<(f64, f64)>,
}

/// Kaplan–Meier curves: steps down at each event time.
pub fn steps(title: &str, curves: &[Curve], x_label: &str) -> Chart {
    let t_max = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)).fold(1.0, f64::max);
    let xticks = nice_ticks(0.0, t_max, 6);
    let xs = Scale::new(0.0, xticks[xticks.len() - 1], ML, W - MR);
    let ticks = nice_ticks(0.0, 1.0, 4);
    let y = Scale::new(0.0, 1.0, H - MB, MT);
    let mut svg = open(title, H);
    y_axis(&mut svg, &y, &ticks, Unit::Share);
    for t in &xticks {
        let _ = write!(
            svg,
            r#"<text class=tick x="{:.1}" y="{}" text-anchor=middle>{}</text>"#,
            xs.at(*t),
            H - MB + 16.0,
            esc(&number(*t))
        );
    }
    let _ =
        write!(svg, r#"<text class=tick x="{}" y="{}" text-anchor=end>{}</text>"#, W - MR, H - MB + 30.0, esc(x_label));
    for (k, c) in curves.iter().enumerate() {
        let mut d = String::new();
        let mut last: Option<(f64, f64)> = None;
        for (t, s) in &c.points {
            match last {
                None => {
                    let _ = write!(d, "M{:.1},{:.1}", xs.at(*t), y.at(*s));
                }
                Some(_) => {
                    let _ = write!(d, "H{:.1}V{:.1}", xs.at(*t), y.at(*s));
                }
            }
            last = Some((*t, *s));
        }
        if let Some((_, s)) = last {
            let _ = write!(d, "H{:.1}", xs.at(t_max));
            let _ = write!(
                svg,
                r#"<path class="s{} line" d="{d}"><title>{}: {} at the end</title></path>"#,
                k % COLOURS,
                esc(&c.name),
                esc(&Unit::Share.format(s))
            );
        }
    }
    let names: Vec<&str> = curves.iter().map(|c| c.name.as_str()).collect();
    legend(&mut svg, &names, H - 8.0);
    svg.push_str("</svg>");
    let rows = curves
        .iter()
        .flat_map(|c| c.points.iter().map(move |(t, s)| vec![c.name.clone(), number(*t), Unit::Share.format(*s)]))
        .collect();
    Chart {
        title: title.into(),
        svg,
        table: DataTable { head: vec!["group".into(), x_label.into(), "surviving".into()], rows },
    }
}

/// A funnel: one horizontal bar per stage, its width the stage's count, with the share of
/// the first stage.
pub fn funnel(title: &str, stages: &[(String, f64)]) -> Chart {
    let top = stages.iter().map(|s| s.1).fold(0.0, f64::max);
    let bar_h = 28.0;
    let height = MT + bar_h * stages.len() as f64 + 8.0;
    let xs = Scale::new(0.0, top.max(1.0), 0.0, W - 180.0 - MR);
    let mut svg = open(title, height);
    let first = stages.first().map_or(0.0, |s| s.1);
    for (i, (label, n)) in stages.iter().enumerate() {
        let width = xs.at(*n).max(1.0);
        let y = MT + bar_h * i as f64;
        let share = if first > 0.0 { Unit::Share.format(n / first) } else { "–".into() };
        let _ = write!(
            svg,
            r#"<text class=tick x="170" y="{:.1}" text-anchor=end>{} · {} ({share})</text><rect class="s{} bar" x="{:.1}" y="{y:.1}" width="{width:.1}" height="{:.1}"><title>{}: {} ({share})</title></rect>"#,
            y + 18.0,
            esc(label),
            esc(&number(*n)),
            i % COLOURS,
            180.0 + (W - 180.0 - MR - width) / 2.0,
            bar_h - 4.0,
            esc(label),
            esc(&number(*n)),
        );
    }
    svg.push_str("</svg>");
    let rows = stages
        .iter()
        .map(|(l, n)| vec![l.clone(), number(*n), if first > 0.0 { Unit::Share.format(n / first) } else { "–".into() }])
        .collect();
    Chart {
        title: title.into(),
        svg,
        table: DataTable { head: vec!["stage".into(), "accounts".into(), "of the first".into()], rows },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_maps_the_domain_ends_onto_the_range_ends_and_inverts_y() {
        let y = Scale::new(0.0, 100.0, 200.0, 10.0);
        assert_eq!((y.at(0.0), y.at(100.0), y.at(50.0)), (200.0, 10.0, 105.0));
        assert_eq!(Scale::new(5.0, 5.0, 0.0, 10.0).at(5.0), 5.0, "an empty domain lands in the middle");
    }

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        assert_eq!(nice_ticks(0.0, 100.0, 4), vec![0.0, 50.0, 100.0]);
        assert_eq!(nice_ticks(0.0, 1.0, 4), vec![0.0, 0.5, 1.0]);
        assert_eq!(nice_ticks(3.0, 97.0, 5), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(nice_ticks(-12.0, 30.0, 4), vec![-20.0, 0.0, 20.0, 40.0]);
        let small = nice_ticks(0.0, 0.3, 3);
        assert_eq!(small.len(), 4);
        assert!((small[3] - 0.3).abs() < 1e-12, "{small:?}");
        // A single value still gets an axis around it; nonsense gets 0..1.
        assert_eq!(nice_ticks(0.0, 0.0, 4), vec![0.0, 0.5, 1.0]);
        assert_eq!(nice_ticks(f64::NAN, 1.0, 4), vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn labels_are_escaped_in_the_svg_and_kept_plain_in_the_table() {
        let hostile = r#"<script>alert("x")</script>"#;
        let c = bars("ARR by <plan>", &[(hostile.into(), 5.0)], Unit::Number);
        assert!(!c.svg.contains("<script>"), "{}", c.svg);
        assert!(c.svg.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(c.svg.contains("aria-label=\"ARR by &lt;plan&gt;\""));
        assert_eq!(c.table.rows, vec![vec![hostile.to_string(), "5".to_string()]]);
        let l = line(
            "t",
            &[hostile.into()],
            &[Series { name: hostile.into(), values: vec![Some(1.0)] }],
            Unit::Share,
            true,
            true,
        );
        assert!(!l.svg.contains("<script>"));
    }

    #[test]
    fn a_line_skips_gaps_and_tabulates_every_point() {
        let x: Vec<String> = ["Jan", "Feb", "Mar"].map(String::from).to_vec();
        let c = line(
            "NRR",
            &x,
            &[Series { name: "NRR".into(), values: vec![Some(1.0), None, Some(0.9)] }],
            Unit::Share,
            false,
            false,
        );
        // Two runs of one point: no path joins Jan to Mar across the gap.
        assert_eq!(c.svg.matches("class=\"s0 line\"").count(), 2);
        assert_eq!(c.svg.matches("<circle").count(), 2);
        assert_eq!(c.table.rows[1], vec!["Feb".to_string(), "–".to_string()]);
        assert_eq!(c.table.rows[2], vec!["Mar".to_string(), "90.0%".to_string()]);
    }

    #[test]
    fn a_waterfall_ends_at_the_sum_of_its_steps() {
        let steps = vec![("new".to_string(), 30.0), ("churn".to_string(), -50.0)];
        let c = waterfall("ARR", ("start", 100.0), &steps, "end", Unit::Money);
        assert_eq!(c.table.rows.last(), Some(&vec!["end".to_string(), "80".to_string()]));
        assert_eq!(c.svg.matches("class=\"up bar\"").count(), 1);
        assert_eq!(c.svg.matches("class=\"down bar\"").count(), 1);
        assert_eq!(c.svg.matches("class=\"total bar\"").count(), 2);
    }

    #[test]
    fn heat_cells_are_shaded_by_fifths_and_empty_cells_are_left_out() {
        let c = heatmap(
            "cohorts",
            &["2026-01".into()],
            &["0".into(), "1".into(), "2".into()],
            &[vec![Some(1.0), Some(0.39), None]],
        );
        assert!(c.svg.contains("class=\"h4\""));
        assert!(c.svg.contains("class=\"h1\""));
        assert_eq!(c.svg.matches("<rect").count(), 2);
        assert_eq!(c.table.rows[0], vec!["2026-01", "100.0%", "39.0%", ""]);
    }

    #[test]
    fn a_survival_curve_steps_horizontally_then_down() {
        let c = steps("KM", &[Curve { name: "did it".into(), points: vec![(0.0, 1.0), (10.0, 0.5)] }], "days");
        assert!(c.svg.contains("V"), "{}", c.svg);
        assert_eq!(c.table.rows.len(), 2);
    }

    #[test]
    fn a_funnel_gives_each_stage_its_share_of_the_first() {
        let c = funnel("journey", &[("onboard".into(), 200.0), ("adopt".into(), 50.0)]);
        assert_eq!(c.table.rows[1], vec!["adopt", "50", "25.0%"]);
    }

    #[test]
    fn money_is_shortened_readably() {
        assert_eq!(
            (money(950.0), money(12_345.0), money(4_500_000.0), money(-2_000.0)),
            ("950".into(), "12k".into(), "4.5M".into(), "−2.0k".into())
        );
    }
}
