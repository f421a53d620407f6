//! The SVG bar chart of cold starts against the floor.

use std::path::Path;

use plotters::prelude::*;

use crate::report::{COLD_FLOOR_RATIO, Report};

const FLOOR_COLOUR: RGBColor = RGBColor(120, 120, 120);
const OWN_COLOUR: RGBColor = RGBColor(46, 110, 180);
const ARGON2ID_COLOUR: RGBColor = RGBColor(160, 190, 225);
const BUDGET_COLOUR: RGBColor = RGBColor(200, 40, 40);

pub fn draw(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let bars: Vec<(&str, f64, f64)> = std::iter::once(&report.floor)
        .chain(&report.functions)
        .map(|result| {
            let argon2id = result.cold_argon2id_ms.min(result.cold_ms);
            (
                result.function.as_str(),
                result.cold_ms - argon2id,
                argon2id,
            )
        })
        .collect();
    let budget = COLD_FLOOR_RATIO * report.floor.cold_ms;
    let highest = bars
        .iter()
        .map(|(_, own, argon2id)| own + argon2id)
        .fold(budget, f64::max)
        * 1.15;
    let width = 160 + 90 * bars.len() as u32;
    let root = SVGBackend::new(path, (width, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Cold start, median of {} fresh processes (floor: a bare lambda_http function)",
                report.cold_runs
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..bars.len() as f64, 0.0..highest)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len())
        .x_label_formatter(&|x| {
            bars.get(x.floor() as usize)
                .filter(|_| x.fract() == 0.5)
                .map(|(name, ..)| name.to_string())
                .unwrap_or_default()
        })
        .y_desc("ms, spawn to first answer")
        .draw()?;
    for (index, (_, own, argon2id)) in bars.iter().enumerate() {
        let left = index as f64 + 0.15;
        let right = index as f64 + 0.85;
        let colour = if index == 0 { FLOOR_COLOUR } else { OWN_COLOUR };
        chart.draw_series([Rectangle::new(
            [(left, 0.0), (right, *own)],
            colour.filled(),
        )])?;
        if *argon2id > 0.0 {
            chart.draw_series([Rectangle::new(
                [(left, *own), (right, own + argon2id)],
                ARGON2ID_COLOUR.filled(),
            )])?;
        }
        chart.draw_series([Text::new(
            format!("{:.1}", own + argon2id),
            (left, own + argon2id + highest * 0.01),
            ("sans-serif", 12),
        )])?;
    }
    chart
        .draw_series([PathElement::new(
            [(0.0, budget), (bars.len() as f64, budget)],
            BUDGET_COLOUR.stroke_width(2),
        )])?
        .label(format!(
            "budget: {COLD_FLOOR_RATIO}x the floor (argon2id excluded)"
        ))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BUDGET_COLOUR.stroke_width(2)));
    chart
        .draw_series([Rectangle::new(
            [(0.0, 0.0), (0.0, 0.0)],
            ARGON2ID_COLOUR.filled(),
        )])?
        .label("argon2id's own time")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], ARGON2ID_COLOUR.filled()));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
