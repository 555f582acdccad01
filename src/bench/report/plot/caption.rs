//! The caption above the three panels: the title, the settings and the machine in
//! words, and the one legend the panels share.

use super::{color_of, Area, DrawResult, TEXT_PX};
use crate::bench::report::Report;
use plotters::prelude::*;

/// The title, the settings, the machine, and the one legend for all three panels.
pub(super) fn draw(area: &Area, report: &Report, servers: &[&str]) -> DrawResult {
    let title = ("sans-serif", 22).into_font().style(FontStyle::Bold);
    let text = ("sans-serif", TEXT_PX).into_font();
    area.draw(&Text::new(
        "looplab bench: echo round trips, thread per connection against the event loop",
        (20, 12),
        title,
    ))?;
    area.draw(&Text::new(report.settings(), (20, 44), text.clone()))?;
    area.draw(&Text::new(
        format!("machine: {}", report.machine.describe()),
        (20, 66),
        text.clone(),
    ))?;
    let mut x = 20;
    for server in servers {
        let color = color_of(server);
        area.draw(&PathElement::new(
            vec![(x, 97), (x + 34, 97)],
            color.stroke_width(3),
        ))?;
        area.draw(&Circle::new((x + 17, 97), 4, color.filled()))?;
        area.draw(&Text::new(server.to_string(), (x + 42, 89), text.clone()))?;
        x += 52 + 10 * server.len() as i32 + 20;
    }
    Ok(())
}
