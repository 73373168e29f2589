//! The end of `cargo xtask bench`: the rows the benches appended ([`super::row`]) read back and
//! printed as one table (bench | what | figure | goal | met), and written as markdown, with each
//! figure's spread and the command that reproduces it, to `target/bench-summary.md`.

use std::path::Path;

use super::row::Row;

/// The rows of a summary file, in the order they were written; a line that is not a row is
/// kept as one saying so, so that nothing a bench wrote goes missing silently.
pub fn read(path: &Path) -> Vec<Row> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| parse(line).unwrap_or_else(|| unreadable(line)))
        .collect()
}

fn parse(line: &str) -> Option<Row> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = |key: &str| value.get(key)?.as_str().map(str::to_owned);
    Some(Row {
        bench: text("bench")?,
        what: text("what")?,
        figure: text("figure")?,
        value: value
            .get("value")
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN),
        unit: text("unit").unwrap_or_default(),
        goal: text("goal").unwrap_or_default(),
        met: value.get("met").and_then(|met| met.as_bool()),
        spread: text("spread"),
        command: text("command").unwrap_or_default(),
    })
}

fn unreadable(line: &str) -> Row {
    let mut row = Row::new(
        "?",
        format!("unreadable summary line: {line}"),
        f64::NAN,
        "",
        0,
    );
    row.figure = "?".into();
    row
}

/// A row for a bench that failed (its own rows, if it wrote some first, stay above it).
pub fn failed(bench: &str, seconds: f64, command: &str) -> Row {
    let mut row = Row::new(bench, "the bench", f64::NAN, "", 0).command(command);
    row.figure = format!("FAILED after {seconds:.0} s");
    row
}

/// A row for a bench that ran but wrote no row (no goal, or a mode without one).
pub fn silent(bench: &str, seconds: f64, command: &str) -> Row {
    let mut row = Row::new(
        bench,
        "ran; no goal row (see its output above)",
        f64::NAN,
        "",
        0,
    )
    .command(command);
    row.figure = format!("done in {seconds:.0} s");
    row
}

fn met(row: &Row) -> &'static str {
    if row.figure.starts_with("FAILED") {
        return "FAILED";
    }
    match row.met {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "—",
    }
}

fn figure(row: &Row) -> String {
    match &row.spread {
        Some(spread) => format!("{} ({spread})", row.figure),
        None => row.figure.clone(),
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "—" } else { text }
}

/// The table for the terminal: columns padded to their widest cell.
pub fn table(rows: &[Row]) -> String {
    let header = ["bench", "what", "figure", "goal", "met"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            [
                row.bench.clone(),
                row.what.clone(),
                figure(row),
                or_dash(&row.goal).to_owned(),
                met(row).to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |line: &[String]| {
        let padded: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = render(&header.map(str::to_owned));
    out.push_str(&render(&widths.map(|width| "-".repeat(width))));
    for line in &cells {
        out.push_str(&render(line));
    }
    out
}

/// The table as markdown, with each figure's spread and command.
pub fn markdown(rows: &[Row], done: &[String]) -> String {
    let escape = |text: &str| text.replace('|', "\\|");
    let mut out = String::from(
        "# Bench summary\n\nWritten by `cargo xtask bench`: every figure beside its goal.\n\n\
         | bench | what | figure | spread | goal | met | command |\n\
         |---|---|---:|---|---|:---:|---|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | `{}` |\n",
            escape(&row.bench),
            escape(&row.what),
            escape(&row.figure),
            escape(row.spread.as_deref().unwrap_or("—")),
            escape(or_dash(&row.goal)),
            met(row),
            escape(&row.command),
        ));
    }
    out.push('\n');
    for line in done {
        out.push_str(&format!("- {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_the_file_and_print_as_a_table() {
        let dir = std::env::temp_dir().join(format!("fusebox-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("summary.jsonl");
        let rows = [
            Row::new(
                "hot_path",
                "closed, \"count\" window, 1 thread",
                0.22,
                "×",
                2,
            )
            .at_most(0.5, 2)
            .spread(0.21, 0.24, 2, 9)
            .command("cargo xtask bench --only hot_path -- table"),
            Row::new("server", "detail p95 | 10 M outcomes", 23.4, "ms", 1)
                .at_most(20.0, 0)
                .command("cargo xtask bench --only server -- detail"),
            Row::new("server", "RSS per live breaker", 18.1, "KB", 1).command("x"),
            failed("soak", 12.0, "cargo xtask bench --only soak"),
        ];
        let text: String = rows.iter().map(|row| row.to_json() + "\n").collect();
        std::fs::write(&path, format!("{text}not json\n")).unwrap();
        let back = read(&path);
        assert_eq!(back.len(), 5);
        assert_eq!(back[0], rows[0]);
        assert_eq!(back[1], rows[1]);
        assert_eq!(back[1].met, Some(false));
        assert_eq!(back[2].met, None);
        assert_eq!(back[4].bench, "?");

        let table = table(&back);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2 + 5);
        assert!(lines[0].starts_with("| bench"));
        assert!(lines[2].contains("0.22× (0.21–0.24× over 9 rounds)"));
        let cells = |line: &str| -> Vec<String> {
            line.split(" | ")
                .map(|cell| cell.trim_matches(['|', ' ']).to_owned())
                .collect()
        };
        let last = |line: &str, n: usize| {
            let cells = cells(line);
            cells[cells.len() - n..].to_vec()
        };
        assert_eq!(last(lines[2], 2), ["≤ 0.50×", "yes"]);
        assert_eq!(last(lines[3], 2), ["≤ 20 ms", "NO"]);
        assert_eq!(last(lines[5], 3), ["FAILED after 12 s", "—", "FAILED"]);
        // Every line is as wide as the header.
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|line| line.chars().count() == width));

        let markdown = markdown(&back, &["soak: FAILED after 12 s".into()]);
        assert!(markdown.contains("detail p95 \\| 10 M outcomes"));
        assert!(markdown.contains("`cargo xtask bench --only server -- detail`"));
        assert!(markdown.ends_with("- soak: FAILED after 12 s\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
