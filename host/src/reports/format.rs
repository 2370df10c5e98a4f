//! Output formats shared by the reports: a table that fits the terminal (comfy-table, dynamic
//! column widths), pretty JSON (one object: `report`, `generated_at`, `parameters`,
//! `connections`, `rows`, `totals`, `warnings`) and CSV (RFC 4180, a header row, one record per
//! row). The same figures appear in all three; `docs/reports.md` documents each shape.

use std::io::Write;

use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width, presets};
use serde::Serialize;

use super::ReportError;

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table sized to the terminal.
    Table,
    /// Pretty-printed JSON.
    Json,
    /// CSV with a header row.
    Csv,
}

/// What a report offers to the formats.
pub trait Report: Serialize {
    /// The CSV header.
    fn csv_header(&self) -> Vec<&'static str>;
    /// The CSV records, one per row (same length as the header).
    fn csv_records(&self) -> Vec<Vec<String>>;
    /// The table.
    fn table(&self) -> Table;
    /// Lines printed under the table (definitions, what is left out).
    fn notes(&self) -> Vec<String>;
    /// Things the operator should know; the CLI prints them on standard error.
    fn warnings(&self) -> &[String];
}

/// Writes `report` to `out` in `format`. `width` fixes the table's width (characters); `None`
/// lets the table find the terminal's width (and not wrap when there is no terminal).
pub fn write_report<R: Report>(
    report: &R,
    format: Format,
    width: Option<u16>,
    out: &mut dyn Write,
) -> Result<(), ReportError> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut *out);
            writer.write_record(report.csv_header())?;
            for record in report.csv_records() {
                writer.write_record(&record)?;
            }
            writer.flush()?;
        }
        Format::Table => {
            let mut table = report.table();
            if let Some(width) = width {
                table.set_width(width);
            }
            writeln!(out, "{table}")?;
            for note in report.notes() {
                writeln!(out, "{note}")?;
            }
        }
    }
    Ok(())
}

/// A table with `header` (a `\n` in a title makes it two lines). The columns in `numbers` are
/// right-aligned and, like those in `keep`, never wrapped (at least as wide as their widest
/// cell); the other columns wrap when the terminal is narrow, down to 8 characters.
pub(crate) fn new_table(header: &[&str], numbers: &[usize], keep: &[usize]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    for index in numbers {
        if let Some(column) = table.column_mut(*index) {
            column.set_cell_alignment(CellAlignment::Right);
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    for index in keep {
        if let Some(column) = table.column_mut(*index) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    // Text columns wrap, but never below a readable width (the table then runs wider than a
    // very narrow terminal rather than into one-letter columns).
    for (index, column) in table.column_iter_mut().enumerate() {
        if !numbers.contains(&index) && !keep.contains(&index) {
            column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(8)));
        }
    }
    table
}

/// A count or nothing, for CSV.
pub(crate) fn csv_num(n: Option<u64>) -> String {
    n.map_or_else(String::new, |n| n.to_string())
}

/// A count or `-`, for the table.
pub(crate) fn cell_num(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// A percentage (one decimal) or nothing, for CSV.
pub(crate) fn csv_pct(p: Option<f64>) -> String {
    p.map_or_else(String::new, |p| format!("{p:.1}"))
}

/// A percentage (one decimal) or `-`, for the table.
pub(crate) fn cell_pct(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}"))
}

/// A stored time's date (`2026-01-05`), or `-`, for the table.
pub(crate) fn cell_date(at: Option<&str>) -> String {
    at.map_or_else(|| "-".to_owned(), |at| at.chars().take(10).collect())
}

/// `part / whole` in percent, rounded to one decimal.
pub(crate) fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_to_one_decimal() {
        let cases = [
            (2, 3, Some(66.7)),
            (1, 3, Some(33.3)),
            (0, 5, Some(0.0)),
            (5, 5, Some(100.0)),
            (7, 4, Some(175.0)),
            (1, 0, None),
        ];
        for (part, whole, expected) in cases {
            assert_eq!(percent(part, whole), expected, "{part}/{whole}");
        }
        assert_eq!(csv_pct(Some(66.7)), "66.7");
        assert_eq!(cell_pct(Some(100.0)), "100.0");
        assert_eq!(csv_pct(None), "");
        assert_eq!(cell_date(Some("2026-01-05T10:00:00Z")), "2026-01-05");
    }
}
