//! The SVG bar chart of cold starts against the floor.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{COLD_FLOOR_RATIO, Report};

const FLOOR_COLOUR: RGBColor = RGBColor(120, 120, 120);
const OWN_COLOUR: RGBColor = RGBColor(46, 110, 180);
const DYNAMODB_COLOUR: RGBColor = RGBColor(240, 160, 60);
const ARGON2ID_COLOUR: RGBColor = RGBColor(160, 190, 225);
const BUDGET_COLOUR: RGBColor = RGBColor(200, 40, 40);

pub fn draw(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    // Per function: its own time, then DynamoDB's, then argon2id's, stacked.
    let bars: Vec<(&str, [f64; 3])> = std::iter::once(&report.floor)
        .chain(&report.functions)
        .map(|result| {
            let argon2id = result.cold_argon2id_ms.min(result.cold_ms);
            let dynamodb = result.cold_dynamodb_ms.min(result.cold_ms - argon2id);
            let own = result.cold_ms - argon2id - dynamodb;
            (result.function.as_str(), [own, dynamodb, argon2id])
        })
        .collect();
    let budget = COLD_FLOOR_RATIO * report.floor.cold_ms;
    let highest = bars
        .iter()
        .map(|(_, parts)| parts.iter().sum::<f64>())
        .fold(budget, f64::max)
        * 1.5; // headroom for the legend
    let count = bars.len();
    let width = (200 + 100 * count as u32).max(760);
    let root = SVGBackend::new(path, (width, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Cold start, spawn to first answer: median of {} fresh processes",
                report.cold_runs
            ),
            ("sans-serif", 18),
        )
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(60)
        // A segmented range covers its end value too: the last bar is `count - 1`.
        .build_cartesian_2d((0..count - 1).into_segmented(), 0.0..highest)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count + 1)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(index) => bars
                .get(*index)
                .map(|(name, ..)| name.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("ms")
        .draw()?;
    for (index, (_, parts)) in bars.iter().enumerate() {
        let own_colour = if index == 0 { FLOOR_COLOUR } else { OWN_COLOUR };
        let bar = |from: f64, to: f64, colour: RGBColor| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(index), from),
                    (SegmentValue::Exact(index + 1), to),
                ],
                colour.filled(),
            );
            bar.set_margin(0, 0, 14, 14);
            bar
        };
        let mut bottom = 0.0;
        for (part, colour) in parts
            .iter()
            .zip([own_colour, DYNAMODB_COLOUR, ARGON2ID_COLOUR])
        {
            if *part > 0.0 {
                chart.draw_series([bar(bottom, bottom + part, colour)])?;
                bottom += part;
            }
        }
        chart.draw_series([Text::new(
            format!("{bottom:.1}"),
            (SegmentValue::CenterOf(index), bottom + highest * 0.035),
            TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Center, VPos::Center)),
        )])?;
    }
    chart
        .draw_series([PathElement::new(
            [
                (SegmentValue::Exact(0), budget),
                (SegmentValue::Exact(count), budget),
            ],
            BUDGET_COLOUR.stroke_width(2),
        )])?
        .label(format!(
            "budget: {COLD_FLOOR_RATIO}x the floor ({} in grey), argon2id excluded",
            report.floor.function
        ))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BUDGET_COLOUR.stroke_width(2)));
    for (colour, label) in [
        (OWN_COLOUR, "the function's own time"),
        (DYNAMODB_COLOUR, "waiting on the local DynamoDB"),
        (ARGON2ID_COLOUR, "argon2id (register, login)"),
    ] {
        chart
            .draw_series([Rectangle::new(
                [(SegmentValue::Exact(0), 0.0), (SegmentValue::Exact(0), 0.0)],
                colour.filled(),
            )])?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
