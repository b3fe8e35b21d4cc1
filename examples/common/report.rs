// SPDX-License-Identifier: MPL-2.0
//! The human-readable report of a swarm run (the swarm bench and the simulator): one
//! self-contained HTML file with the summary tables and inline SVG plots (plotters'
//! SVG backend, no fonts or bitmaps needed; no JavaScript, no external resources).
//!
//! Used by examples through `#[path = "common/report.rs"] mod report;`.
//!
//! Robust by design: empty series, single points and non-finite values never panic;
//! non-finite points are skipped, an empty plot says "no data".
#![allow(dead_code)]

use std::fmt::Write as _;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One Segment a client output (or failed, or skipped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegPoint {
    /// Seconds since the run's start (when the client was done with the Segment).
    pub t: f64,
    /// Crumbs output (0 = nothing).
    pub d: u32,
    /// Crumbs of the Segment.
    pub n: u32,
    /// Deadline minus the time the client was done with the Segment, s.
    pub margin_s: f64,
    pub success: bool,
    /// Delivered quality rate of this Segment (bytes of crumbs 1..=d over |s|), kbit/s.
    pub kbps: f64,
}

/// The Segments of one client.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientSeries {
    pub name: String,
    /// Link class, e.g. "adsl-256/64".
    pub link: String,
    pub points: Vec<SegPoint>,
}

/// One run: its clients' Segments and the channel's upload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    pub title: String,
    pub clients: Vec<ClientSeries>,
    /// (t s, kbit/s).
    pub channel_upload_kbps: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Shown under the table (plain text).
    pub note: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub title: String,
    /// Paragraphs, plain text.
    pub intro: Vec<String>,
    pub tables: Vec<Table>,
    pub runs: Vec<RunData>,
    /// (caption, svg).
    pub extra_plots: Vec<(String, String)>,
}

/// Writes `report` as one HTML file (creating its directory).
pub fn write_html(report: &Report, path: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, html(report))
}

/// The report as an HTML document.
pub fn html(report: &Report) -> String {
    let mut h = String::new();
    let title = esc(&report.title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    for p in &report.intro {
        let _ = writeln!(h, "<p>{}</p>", esc(p));
    }
    for t in &report.tables {
        h.push_str(&table_html(t));
    }
    for (i, run) in report.runs.iter().enumerate() {
        h.push_str(&run_html(run, i));
    }
    if !report.extra_plots.is_empty() {
        h.push_str("<section>\n<h2>More plots</h2>\n");
        for (caption, svg) in &report.extra_plots {
            figure(&mut h, svg, caption);
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

const CSS: &str = "body{font-family:sans-serif;max-width:1000px;margin:1em auto;padding:0 1em;\
color:#222;line-height:1.4}table{border-collapse:collapse;margin:.5em 0}\
th,td{border:1px solid #bbb;padding:.2em .6em;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#eee}\
caption{font-weight:bold;text-align:left;padding:.3em 0}.note{color:#555;font-size:.9em}\
figure{margin:1em 0}figcaption{color:#444;font-size:.9em}svg{max-width:100%;height:auto}\
section{border-top:2px solid #ccc;margin-top:1.5em}";

fn table_html(t: &Table) -> String {
    let mut h = String::from("<table>\n");
    if !t.title.is_empty() {
        let _ = writeln!(h, "<caption>{}</caption>", esc(&t.title));
    }
    if !t.header.is_empty() {
        h.push_str("<tr>");
        for c in &t.header {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
        h.push_str("</tr>\n");
    }
    for row in &t.rows {
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    if !t.note.is_empty() {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&t.note));
    }
    h
}

fn figure(h: &mut String, svg: &str, caption: &str) {
    let _ = writeln!(
        h,
        "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
        esc(caption)
    );
}

fn run_html(run: &RunData, i: usize) -> String {
    let mut h = String::new();
    let title = if run.title.is_empty() {
        format!("Run {}", i + 1)
    } else {
        run.title.clone()
    };
    let _ = writeln!(h, "<section>\n<h2>{}</h2>", esc(&title));
    let n = run.clients.len();
    let points: usize = run.clients.iter().map(|c| c.points.len()).sum();
    let _ = writeln!(
        h,
        "<p>{n} client{} shown, {points} Segment{} in all.</p>",
        if n == 1 { "" } else { "s" },
        if points == 1 { "" } else { "s" }
    );
    figure(
        &mut h,
        &d_chart(run),
        "Quality over time: D, the crumbs each client output per Segment (1 = base layer \
         only, 0 = nothing: a failed or skipped Segment), one colour per client; the \
         dashed grey line is N, all crumbs of a Segment (full quality). Lines are offset \
         vertically by a hair so that clients at the same D stay visible.",
    );
    figure(
        &mut h,
        &margin_chart(run),
        "Deadline margin over time: how long before its deadline each client was done \
         with a Segment (s; the deadline is the Segment's duration plus the time saved on \
         earlier ones). The black line is 0 = just in time. Red crosses are failed \
         Segments (crumb 1 missed the deadline); they are drawn just below 0 when the \
         client gave up exactly at the deadline.",
    );
    figure(
        &mut h,
        &upload_chart(run),
        "The channel's (super seed's or server's) upload over time, kbit/s.",
    );
    figure(
        &mut h,
        &quality_cdf_chart(run),
        "Quality distribution: for each link class, the share of Segments (y) delivered at \
         a quality rate of at most x kbit/s (bytes of the crumbs output over the Segment's \
         duration; failed Segments count as 0). A curve further right is better.",
    );
    h.push_str("</section>\n");
    h
}

fn d_chart(run: &RunData) -> String {
    let k = run.clients.len();
    let spread = if k > 1 {
        (0.3 / (k - 1) as f64).min(0.08)
    } else {
        0.0
    };
    let mut series: Vec<Series> = run
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let off = (i as f64 - (k as f64 - 1.0) / 2.0) * spread;
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .map(|p| (p.t, f64::from(p.d) + off))
                .collect();
            Series::new(client_label(c), step_points(&pts), Mark::Line, palette(i))
        })
        .collect();
    let mut ns: Vec<(f64, f64)> = run
        .clients
        .iter()
        .flat_map(|c| c.points.iter().map(|p| (p.t, f64::from(p.n))))
        .filter(|p| p.0.is_finite())
        .collect();
    ns.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut n_line: Vec<(f64, f64)> = Vec::new();
    for p in &ns {
        if n_line.last().is_none_or(|l| l.1 != p.1) {
            n_line.push(*p);
        }
    }
    if let (Some(last), Some(end)) = (n_line.last().copied(), ns.last())
        && end.0 > last.0
    {
        n_line.push((end.0, last.1));
    }
    if !n_line.is_empty() {
        series.push(Series::new(
            "N (all crumbs)",
            step_points(&n_line),
            Mark::Dashed,
            GREY,
        ));
    }
    chart_svg(&Chart {
        title: "Crumbs output per Segment (D)".into(),
        x_label: "time since start (s)".into(),
        y_label: "crumbs D".into(),
        series,
        y_zero: true,
        ..Default::default()
    })
}

fn margin_chart(run: &RunData) -> String {
    let ok_max = run
        .clients
        .iter()
        .flat_map(|c| c.points.iter())
        .filter(|p| p.success)
        .map(|p| p.margin_s)
        .filter(|m| m.is_finite())
        .fold(0.0f64, f64::max);
    let below = -(ok_max * 0.05).max(0.05);
    let mut series: Vec<Series> = run
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pts = c
                .points
                .iter()
                .filter(|p| p.success)
                .map(|p| (p.t, p.margin_s))
                .collect();
            Series::new(client_label(c), pts, Mark::LinePoints, palette(i))
        })
        .collect();
    let failed: Vec<(f64, f64)> = run
        .clients
        .iter()
        .flat_map(|c| c.points.iter())
        .filter(|p| !p.success)
        .map(|p| {
            let m = if p.margin_s.is_finite() && p.margin_s < 0.0 {
                p.margin_s
            } else {
                below
            };
            (p.t, m)
        })
        .collect();
    if !failed.is_empty() {
        series.push(Series::new(
            format!("failed Segment ({})", failed.len()),
            failed,
            Mark::Crosses,
            RED,
        ));
    }
    chart_svg(&Chart {
        title: "Deadline margin per Segment".into(),
        x_label: "time since start (s)".into(),
        y_label: "deadline − done (s)".into(),
        series,
        hline: Some((0.0, "deadline (margin 0)".into())),
        ..Default::default()
    })
}

fn upload_chart(run: &RunData) -> String {
    chart_svg(&Chart {
        title: "Channel upload".into(),
        x_label: "time since start (s)".into(),
        y_label: "upload (kbit/s)".into(),
        series: vec![Series::new(
            "channel upload",
            run.channel_upload_kbps.clone(),
            Mark::Line,
            palette(0),
        )],
        y_zero: true,
        ..Default::default()
    })
}

fn quality_cdf_chart(run: &RunData) -> String {
    let mut classes: Vec<(String, Vec<f64>)> = Vec::new();
    for c in &run.clients {
        let values = c.points.iter().map(|p| p.kbps);
        match classes.iter_mut().find(|(l, _)| *l == c.link) {
            Some((_, v)) => v.extend(values),
            None => classes.push((c.link.clone(), values.collect())),
        }
    }
    let classes: Vec<(String, Vec<f64>)> = classes
        .into_iter()
        .map(|(l, v)| (format!("{l} ({} Segments)", v.len()), v))
        .collect();
    cdf_svg(
        "Quality CDF per link class",
        "delivered quality rate (kbit/s)",
        &classes,
    )
}

fn client_label(c: &ClientSeries) -> String {
    match (c.name.is_empty(), c.link.is_empty()) {
        (false, false) => format!("{} ({})", c.name, c.link),
        (false, true) => c.name.clone(),
        (true, _) => c.link.clone(),
    }
}

/// A plain line chart, one line per series, with a legend.
pub fn line_chart_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    chart_svg(&Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        series: series
            .iter()
            .enumerate()
            .map(|(i, (name, pts))| Series::new(name.clone(), pts.clone(), Mark::Line, palette(i)))
            .collect(),
        ..Default::default()
    })
}

/// Empirical CDFs (y = share of values <= x), one curve per series.
pub fn cdf_svg(title: &str, x_label: &str, series: &[(String, Vec<f64>)]) -> String {
    let all_nonneg = series
        .iter()
        .flat_map(|s| s.1.iter())
        .filter(|v| v.is_finite())
        .all(|v| *v >= 0.0);
    chart_svg(&Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: "share of values ≤ x".into(),
        series: cdf_series(series),
        x_zero: all_nonneg,
        y_range: Some((0.0, 1.02)),
        ..Default::default()
    })
}

/// CDF step lines of `series`, each continued at 1 to the largest value of all, so
/// that a curve ending left of another does not vanish under its vertical step.
fn cdf_series(series: &[(String, Vec<f64>)]) -> Vec<Series> {
    let mut lines: Vec<Vec<(f64, f64)>> = series.iter().map(|s| cdf_points(&s.1)).collect();
    let right = lines
        .iter()
        .filter_map(|l| l.last().map(|p| p.0))
        .fold(f64::NEG_INFINITY, f64::max);
    for l in &mut lines {
        if let Some(&(x, y)) = l.last()
            && x < right
        {
            l.push((right, y));
        }
    }
    series
        .iter()
        .zip(lines)
        .enumerate()
        .map(|(i, ((name, _), l))| Series::new(name.clone(), l, Mark::Line, palette(i)))
        .collect()
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Mark {
    #[default]
    Line,
    Dashed,
    Points,
    LinePoints,
    Crosses,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub mark: Mark,
    pub color: RGBColor,
}

impl Series {
    pub fn new(
        name: impl Into<String>,
        points: Vec<(f64, f64)>,
        mark: Mark,
        color: RGBColor,
    ) -> Self {
        Series {
            name: name.into(),
            points,
            mark,
            color,
        }
    }
}

/// A chart for [`chart_svg`].
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// A horizontal reference line (y, legend label), drawn black.
    pub hline: Option<(f64, String)>,
    /// Include 0 in the axis range.
    pub x_zero: bool,
    pub y_zero: bool,
    /// Fixed y range instead of the data's.
    pub y_range: Option<(f64, f64)>,
}

pub const GREY: RGBColor = RGBColor(140, 140, 140);
pub const RED: RGBColor = RGBColor(214, 39, 40);
const BLACK_: RGBColor = RGBColor(0, 0, 0);

/// Distinct colours (no red or grey: those mark failures and references).
pub fn palette(i: usize) -> RGBColor {
    const P: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(57, 59, 121),
        RGBColor(99, 121, 57),
    ];
    P[i % P.len()]
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 380;
const LEGEND_W: u32 = 215;

/// Draws `c` as an SVG document (a String). Never panics on odd data: non-finite
/// points are skipped, degenerate ranges widened; a drawing error yields a stub SVG.
pub fn chart_svg(c: &Chart) -> String {
    let mut svg = String::new();
    let drawn = draw(c, &mut svg);
    match drawn {
        Ok(()) => svg,
        Err(e) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"40\">\
             <text x=\"10\" y=\"25\">{}: cannot draw ({})</text></svg>",
            esc(&c.title),
            esc(&e)
        ),
    }
}

fn finite(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

fn draw(c: &Chart, svg: &mut String) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let series: Vec<Series> = c
        .series
        .iter()
        .map(|s| Series {
            points: s.points.iter().copied().filter(finite).collect(),
            ..s.clone()
        })
        .collect();
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let empty = series.iter().all(|s| s.points.is_empty());
    let zero = |on: bool| on.then_some(0.0);
    let (x0, x1) = axis_range(xs.chain(zero(c.x_zero)), 0.02);
    let hline = c.hline.as_ref().map(|h| h.0).filter(|y| y.is_finite());
    let (y0, y1) = match c.y_range {
        Some((a, b)) if a.is_finite() && b.is_finite() && a < b => (a, b),
        _ => axis_range(ys.chain(zero(c.y_zero)).chain(hline), 0.05),
    };
    {
        let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_W);
        let mut chart = ChartBuilder::on(&plot)
            .caption(&c.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        let fmt = |v: &f64| fmt_num(*v);
        chart
            .configure_mesh()
            .x_desc(c.x_label.as_str())
            .y_desc(c.y_label.as_str())
            .x_labels(10)
            .y_labels(8)
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(&e))?;
        let mut entries: Vec<(String, Mark, RGBColor)> = Vec::new();
        if let Some((y, label)) = c.hline.as_ref().filter(|h| h.0.is_finite()) {
            chart
                .draw_series(LineSeries::new(
                    [(x0, *y), (x1, *y)],
                    BLACK_.stroke_width(1),
                ))
                .map_err(|e| err(&e))?;
            entries.push((label.clone(), Mark::Line, BLACK_));
        }
        for s in &series {
            let pts = s.points.clone();
            let color = s.color;
            match s.mark {
                Mark::Line => {
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(|e| err(&e))?;
                }
                Mark::Dashed => {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 6, 4, color.stroke_width(2)))
                        .map_err(|e| err(&e))?;
                }
                Mark::Points => {
                    chart
                        .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                        .map_err(|e| err(&e))?;
                }
                Mark::LinePoints => {
                    chart
                        .draw_series(LineSeries::new(pts.clone(), color.stroke_width(1)))
                        .map_err(|e| err(&e))?;
                    chart
                        .draw_series(pts.into_iter().map(|p| Circle::new(p, 2, color.filled())))
                        .map_err(|e| err(&e))?;
                }
                Mark::Crosses => {
                    chart
                        .draw_series(
                            pts.into_iter()
                                .map(|p| Cross::new(p, 4, color.stroke_width(2))),
                        )
                        .map_err(|e| err(&e))?;
                }
            }
            entries.push((s.name.clone(), s.mark, color));
        }
        if empty {
            plot.draw_text(
                "no data",
                &("sans-serif", 20).into_font().color(&GREY),
                ((WIDTH - LEGEND_W) as i32 / 2 - 30, HEIGHT as i32 / 2),
            )
            .map_err(|e| err(&e))?;
        }
        draw_legend(&legend, &entries).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(String, Mark, RGBColor)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let row = 18i32;
    let top = 40i32;
    let fits = ((HEIGHT as i32 - top - 10) / row).max(1) as usize;
    let font = ("sans-serif", 13).into_font();
    for (i, (name, mark, color)) in entries.iter().enumerate() {
        let y = top + i as i32 * row;
        if i + 1 == fits && entries.len() > fits {
            area.draw_text(
                &format!("… and {} more", entries.len() - i),
                &font.color(&BLACK_),
                (8, y - 6),
            )?;
            break;
        }
        let c = *color;
        match mark {
            Mark::Line => area.draw(&PathElement::new(vec![(4, y), (30, y)], c.stroke_width(2)))?,
            Mark::Dashed => {
                area.draw(&PathElement::new(vec![(4, y), (12, y)], c.stroke_width(2)))?;
                area.draw(&PathElement::new(vec![(18, y), (26, y)], c.stroke_width(2)))?;
            }
            Mark::Points => area.draw(&Circle::new((17, y), 3, c.filled()))?,
            Mark::LinePoints => {
                area.draw(&PathElement::new(vec![(4, y), (30, y)], c.stroke_width(1)))?;
                area.draw(&Circle::new((17, y), 3, c.filled()))?;
            }
            Mark::Crosses => area.draw(&Cross::new((17, y), 4, c.stroke_width(2)))?,
        }
        let mut label = name.clone();
        if label.chars().count() > 30 {
            label = label.chars().take(29).collect::<String>() + "…";
        }
        area.draw_text(&label, &font.color(&BLACK_), (36, y - 7))?;
    }
    Ok(())
}

/// Axis range of the finite `values`, padded by `pad` of the span on each side; a
/// single value gets a range around it, no value gives 0..1.
pub fn axis_range(values: impl IntoIterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let w = (lo.abs() * 0.1).max(1.0);
        return (lo - w, hi + w);
    }
    let p = (hi - lo) * pad.max(0.0);
    (lo - p, hi + p)
}

/// Points of a step line through `pts` (sorted by x): each y holds until the next x.
/// Non-finite points are skipped.
pub fn step_points(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = pts.iter().copied().filter(finite).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::with_capacity(v.len() * 2);
    for (i, p) in v.iter().enumerate() {
        if i > 0 {
            out.push((p.0, v[i - 1].1));
        }
        out.push(*p);
    }
    out
}

/// The empirical CDF of the finite `values` as a step line: (x, share of values <= x),
/// from (min, 0) to (max, 1). Thinned to about 1000 steps for large inputs.
pub fn cdf_points(values: &[f64]) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    // (value, share <= value) at the last occurrence of each distinct value.
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (i, x) in v.iter().enumerate() {
        if i + 1 == v.len() || v[i + 1] != *x {
            steps.push((*x, (i + 1) as f64 / n));
        }
    }
    const MAX_STEPS: usize = 1000;
    if steps.len() > MAX_STEPS {
        let k = steps.len();
        steps = (0..=MAX_STEPS)
            .map(|j| steps[j * (k - 1) / MAX_STEPS])
            .collect();
        steps.dedup_by(|a, b| a.0 == b.0);
    }
    let mut out = vec![(steps[0].0, 0.0)];
    let mut prev = 0.0;
    for (x, share) in steps {
        out.push((x, prev));
        out.push((x, share));
        prev = share;
    }
    out.dedup();
    out
}

/// A tick label: few digits, no trailing zeros.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" { "0".into() } else { t.into() }
    } else if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// HTML (and SVG text) escaping.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_steps() {
        assert!(cdf_points(&[]).is_empty());
        assert!(cdf_points(&[f64::NAN]).is_empty());
        assert_eq!(
            cdf_points(&[2.0, 1.0, f64::INFINITY, 1.0]),
            vec![(1.0, 0.0), (1.0, 2.0 / 3.0), (2.0, 2.0 / 3.0), (2.0, 1.0)]
        );
        assert_eq!(cdf_points(&[5.0]), vec![(5.0, 0.0), (5.0, 1.0)]);
        let many: Vec<f64> = (0..10_000).map(f64::from).collect();
        let c = cdf_points(&many);
        assert!(c.len() <= 2100 && c.last() == Some(&(9999.0, 1.0)));
    }

    #[test]
    fn ranges_and_steps() {
        assert_eq!(axis_range([], 0.1), (0.0, 1.0));
        assert_eq!(axis_range([f64::NAN, 3.0], 0.1), (2.0, 4.0));
        assert_eq!(axis_range([0.0, 10.0], 0.1), (-1.0, 11.0));
        assert_eq!(
            step_points(&[(0.0, 1.0), (2.0, 3.0), (f64::NAN, 0.0)]),
            vec![(0.0, 1.0), (2.0, 1.0), (2.0, 3.0)]
        );
        assert_eq!(fmt_num(2.50), "2.5");
        assert_eq!(fmt_num(1500.0), "1500");
        assert_eq!(esc("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
    }

    #[test]
    fn odd_data_does_not_panic() {
        let run = RunData {
            title: "odd <run>".into(),
            clients: vec![
                ClientSeries::default(),
                ClientSeries {
                    name: "c".into(),
                    link: "l".into(),
                    points: vec![SegPoint {
                        t: f64::NAN,
                        margin_s: f64::INFINITY,
                        ..Default::default()
                    }],
                },
                ClientSeries {
                    name: "one".into(),
                    link: "l".into(),
                    points: vec![SegPoint {
                        t: 1.0,
                        d: 1,
                        n: 3,
                        margin_s: 0.5,
                        success: true,
                        kbps: 128.0,
                    }],
                },
            ],
            channel_upload_kbps: vec![(0.0, f64::NAN)],
        };
        let r = Report {
            title: "t".into(),
            runs: vec![run, RunData::default()],
            extra_plots: vec![("x".into(), cdf_svg("e", "x", &[]))],
            ..Default::default()
        };
        let h = html(&r);
        assert!(h.contains("odd &lt;run&gt;") && h.matches("<svg").count() == 9);
    }
}
