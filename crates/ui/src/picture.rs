//! The timeline as an SVG picture (for READMEs, papers and bug reports).

use std::fmt::Write;

use agentry_trace::{StepKind, Timeline};

use crate::PictureError;

/// Text made safe inside SVG (XML) text and attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn short(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(n).collect::<String>())
    }
}

/// Rows for the steps: one each for a small run, else packed so that steps that do not
/// overlap share a row.
fn rows(t: &Timeline) -> (Vec<usize>, usize) {
    if t.steps.len() <= 60 {
        return ((0..t.steps.len()).collect(), t.steps.len());
    }
    let mut ends: Vec<u64> = Vec::new();
    let rows = t
        .steps
        .iter()
        .map(|s| match ends.iter().position(|&end| end <= s.start_us) {
            Some(r) => {
                ends[r] = s.end_us.max(s.start_us + 1);
                r
            }
            None => {
                ends.push(s.end_us.max(s.start_us + 1));
                ends.len() - 1
            }
        })
        .collect();
    (rows, ends.len())
}

/// The run's timeline as an SVG document `width` pixels wide: a bar per model request,
/// call and reply on one time axis, coloured by kind and outcome, the critical path
/// outlined, and a header with the run's figures.
pub fn svg(t: &Timeline, width: u32) -> String {
    let width = width.clamp(400, 4000) as f64;
    let (row_of, nrows) = rows(t);
    let labelled = t.steps.len() <= 60;
    let label_w = if labelled { 180.0 } else { 20.0 };
    let row_h = if labelled {
        22.0
    } else {
        (600.0 / nrows.max(1) as f64).clamp(3.0, 14.0)
    };
    let top = 78.0;
    let height = top + row_h * nrows as f64 + 40.0;
    let plot_w = width - label_w - 20.0;
    let total = t
        .wall_us
        .max(t.steps.iter().map(|s| s.end_us).max().unwrap_or(0))
        .max(1) as f64;
    let x = |us: u64| label_w + plot_w * us as f64 / total;
    let calls = t.steps.iter().filter(|s| s.kind == StepKind::Call).count();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = write!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="20" font-size="15" font-weight="bold">{}</text><text x="10" y="40" fill="#444">{} · {} · {} · {:.3} s · {calls} call(s) · at most {} at once · critical path {} step(s)</text>"##,
        esc(&short(&t.task, 120)),
        esc(&t.mode),
        esc(&short(&t.model, 60)),
        esc(&t.status),
        total / 1e6,
        t.max_parallel,
        t.critical_path.len()
    );
    // The time axis: about eight ticks.
    let step = nice_step(total / 8.0);
    let mut tick = 0.0;
    while tick <= total {
        let tx = label_w + plot_w * tick / total;
        let _ = write!(
            out,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{tx:.1}" y="{:.1}" fill="#666" text-anchor="middle" font-size="10">{}</text>"##,
            top - 6.0,
            top + row_h * nrows as f64,
            top - 10.0,
            seconds(tick)
        );
        tick += step;
    }
    for (s, &row) in t.steps.iter().zip(&row_of) {
        let y = top + row_h * row as f64;
        let x0 = x(s.start_us);
        let w = (x(s.end_us) - x0).max(1.5);
        let fill = match (s.kind, s.ok) {
            _ if s.unfinished => "#f0ad4e",
            (StepKind::Model, true) => "#5b8def",
            (StepKind::Call, true) => "#3fae6a",
            (StepKind::User, _) => "#a0a0a0",
            (_, false) => "#d9534f",
        };
        let stroke = if s.critical {
            r##" stroke="#1b1b1b" stroke-width="2""##
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="2" fill="{fill}"{stroke}><title>{} {} · {:.1} ms{}</title></rect>"#,
            y + 2.0,
            (row_h - 4.0).max(1.0),
            esc(&s.id),
            esc(&s.label),
            (s.end_us - s.start_us) as f64 / 1e3,
            if s.critical { " · critical path" } else { "" }
        );
        if labelled {
            let _ = write!(
                out,
                r##"<text x="8" y="{:.1}" fill="#222">{}</text>"##,
                y + row_h * 0.68,
                esc(&short(&format!("{} {}", s.id, s.label), 26))
            );
            // The duration beside the bar, or inside it at the right edge.
            let took = seconds((s.end_us - s.start_us) as f64);
            let (tx, anchor, fill) = if x0 + w + 60.0 < width {
                (x0 + w + 4.0, "start", "#555")
            } else {
                (x0 + w - 3.0, "end", "#fff")
            };
            let _ = write!(
                out,
                r#"<text x="{tx:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}" fill="{fill}">{took}</text>"#,
                y + row_h * 0.68
            );
        }
    }
    let ly = top + row_h * nrows as f64 + 24.0;
    let _ = write!(
        out,
        r##"<g font-size="11"><rect x="10" y="{:.1}" width="12" height="10" fill="#5b8def"/><text x="26" y="{ly:.1}">model</text><rect x="80" y="{:.1}" width="12" height="10" fill="#3fae6a"/><text x="96" y="{ly:.1}">call</text><rect x="140" y="{:.1}" width="12" height="10" fill="#d9534f"/><text x="156" y="{ly:.1}">failed</text><rect x="210" y="{:.1}" width="12" height="10" fill="#ffffff" stroke="#1b1b1b" stroke-width="2"/><text x="226" y="{ly:.1}">critical path</text></g></svg>"##,
        ly - 9.0,
        ly - 9.0,
        ly - 9.0,
        ly - 9.0
    );
    out
}

/// An SVG picture as PNG, drawn with the system's fonts (DejaVu on Debian).
pub fn png(svg: &str) -> Result<Vec<u8>, PictureError> {
    let mut options = resvg::usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(svg, &options)?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or(PictureError::EmptyPicture)?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| PictureError::Encode(Box::new(e)))
}

fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn seconds(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e4 {
        format!("{:.0} ms", us / 1e3)
    } else {
        format!("{:.1} ms", us / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_models_and_tools_cannot_become_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(130_000.0), 200_000.0);
        assert_eq!(nice_step(9_000.0), 10_000.0);
    }
}
