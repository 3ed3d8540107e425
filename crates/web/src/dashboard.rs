//! The dashboard: backlog by status, queue and process, overdue, SLA attainment today and
//! over 7 days, average finish and handle times, and created and completed per 15 minutes
//! over the last 24 hours, drawn here as SVG. The figures are `GET /api/v1/stats`'s.

use crate::page::{error, html, Layout, Viewer};
use crate::view::{duration, percent};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use std::fmt::Write as _;
use worklane_api::stats::{compute, GroupCount, PeriodCount, StatsView, Window};
use worklane_api::AppState;

/// A labelled bar: label, tasks, and its length in % of the longest.
type Bar = (String, i64, u32);

struct Tile {
    label: &'static str,
    value: String,
    note: String,
    alert: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    layout: Layout,
    tiles: Vec<Tile>,
    /// Backlog by status, by queue and by process: a title and bars (label, tasks, % of
    /// the largest).
    sections: Vec<(&'static str, Vec<Bar>)>,
    chart: String,
    created_24h: i64,
    completed_24h: i64,
}

/// `GET /console/dashboard`.
pub async fn page(State(st): State<AppState>, viewer: Viewer) -> Response {
    let view = match compute(&st.engine, &viewer.tz).await {
        Ok(v) => v,
        Err(e) => return error(&viewer, e),
    };
    let last_seq = st.engine.events().last_seq().await.unwrap_or(0);
    html(&dashboard(
        viewer.layout("Dashboard", "dashboard", last_seq),
        &view,
    ))
}

fn window_tiles(name: &'static str, w: &Window) -> [Tile; 3] {
    let (sla, finish, handle) = match name {
        "today" => ("SLA today", "Finish time today", "Handle time today"),
        _ => ("SLA 7 days", "Finish time 7 days", "Handle time 7 days"),
    };
    [
        Tile {
            label: sla,
            value: percent(w.sla_attainment),
            note: format!(
                "{} of {} with a due date finished in time",
                w.completed_on_time, w.completed_with_due
            ),
            alert: w.sla_attainment.is_some_and(|a| a < 0.8),
        },
        Tile {
            label: finish,
            value: w.average_finish_seconds.map_or("–".into(), duration),
            note: format!("average created → completed, {} completed", w.completed),
            alert: false,
        },
        Tile {
            label: handle,
            value: w.average_handle_seconds.map_or("–".into(), duration),
            note: "average assigned → completed".into(),
            alert: false,
        },
    ]
}

fn dashboard(layout: Layout, v: &StatsView) -> Dashboard {
    let b = &v.backlog;
    let open: i64 = b.by_queue.iter().map(|g| g.tasks).sum();
    let mut tiles = vec![
        Tile {
            label: "Open tasks",
            value: open.to_string(),
            note: "not Completed, Canceled or Rejected".into(),
            alert: false,
        },
        Tile {
            label: "Overdue now",
            value: b.overdue.to_string(),
            note: "open and past their due date".into(),
            alert: b.overdue > 0,
        },
    ];
    tiles.extend(window_tiles("today", &v.today));
    tiles.extend(window_tiles("7d", &v.last7_days));
    let bars = |rows: Vec<(String, i64)>| {
        let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
        rows.into_iter()
            .map(|(k, n)| {
                let pct = (n * 100 / max) as u32;
                (k, n, pct)
            })
            .collect::<Vec<_>>()
    };
    let groups = |g: &[GroupCount]| {
        g.iter()
            .map(|g| (g.id.clone().unwrap_or_else(|| "(none)".into()), g.tasks))
            .collect::<Vec<_>>()
    };
    Dashboard {
        layout,
        tiles,
        sections: vec![
            (
                "Backlog by status",
                bars(
                    b.by_status
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(k, n)| (k.clone(), *n))
                        .collect(),
                ),
            ),
            ("Open tasks by queue", bars(groups(&b.by_queue))),
            ("Open tasks by process", bars(groups(&b.by_process))),
        ],
        chart: chart_svg(&v.last24_hours, &v.time_zone),
        created_24h: v.last24_hours.iter().map(|p| p.created).sum(),
        completed_24h: v.last24_hours.iter().map(|p| p.completed).sum(),
    }
}

/// Created and completed per period as an SVG bar chart (two bars a period), with the
/// hour marks in `tz`. Text in the SVG is escaped; nothing in it comes from outside but
/// numbers and the time zone's name.
pub fn chart_svg(periods: &[PeriodCount], tz: &str) -> String {
    let (w, h, left, bottom, top) = (960.0_f64, 220.0_f64, 40.0_f64, 24.0_f64, 10.0_f64);
    let max = periods
        .iter()
        .map(|p| p.created.max(p.completed))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = periods.len().max(1) as f64;
    let slot = (w - left) / n;
    let bar = (slot / 2.0 - 0.5).max(0.5);
    let plot_h = h - bottom - top;
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"chart-title\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">Created and completed \
         per 15 minutes, last 24 hours</title>"
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - frac);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 4.0,
            y + 4.0,
            (max * frac).round() as i64
        );
    }
    for (i, p) in periods.iter().enumerate() {
        let x = left + i as f64 * slot;
        for (k, (n, class)) in [(p.created, "created"), (p.completed, "completed")]
            .into_iter()
            .enumerate()
        {
            let bh = plot_h * n as f64 / max;
            let _ = write!(
                s,
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\">\
                 <title>{} {class}</title></rect>",
                x + k as f64 * (bar + 0.5),
                top + plot_h - bh,
                n
            );
        }
        let local = p.start.to_zoned(zone.clone());
        if local.minute() == 0 && local.hour() % 3 == 0 {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\">{:02}:00</text>",
                h - 6.0,
                local.hour()
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_draws_a_bar_per_figure_and_period_scaled_to_the_largest() {
        let start: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let periods: Vec<PeriodCount> = (0..4)
            .map(|i| PeriodCount {
                start: start + jiff::SignedDuration::from_mins(15 * i),
                created: i * 10,
                completed: 5,
            })
            .collect();
        let svg = chart_svg(&periods, "UTC");
        assert_eq!(svg.matches("<rect class=\"created\"").count(), 4);
        assert_eq!(svg.matches("<rect class=\"completed\"").count(), 4);
        // The tallest bar (30 created) fills the plot: 220 - 24 - 10 = 186.
        assert!(
            svg.contains("height=\"186.0\"><title>30 created</title>"),
            "{svg}"
        );
        assert!(svg.contains(">00:00</text>"));
    }
}
