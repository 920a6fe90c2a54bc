//! The Prometheus text exposition format (version 0.0.4): `# HELP` / `# TYPE` headers, samples
//! with escaped label values, and histograms as cumulative `_bucket` lines plus `_sum` and
//! `_count`. Written by hand because the format is small and the series are ours: a client crate
//! would want owned label sets, which would mean allocating on every request.

use std::fmt::{Display, Write};

/// The `Content-Type` of a scrape answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds one scrape answer.
#[derive(Default)]
pub struct TextWriter {
    out: String,
}

impl TextWriter {
    /// Starts a metric family. Every family is announced once, before its samples.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        // In HELP text only the backslash and the line break are escaped.
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push('\n');
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One `name{label="value",...} value` line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_label_value(value, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// The samples of one histogram series: a cumulative `_bucket` line per upper bound, then
    /// `+Inf`, `_sum` and `_count`. `counts` holds the observations of each bucket alone (one
    /// more than `bounds`, the last one above every bound), as recorded.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        debug_assert_eq!(counts.len(), bounds.len() + 1);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        let bucket_line = |text: &mut Self, le: &str, cumulative: u64| {
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            text.sample(&bucket, &with_le, cumulative);
        };
        for (bound, count) in bounds.iter().zip(counts) {
            cumulative += count;
            bucket_line(self, &bound.to_string(), cumulative);
        }
        cumulative += counts.last().copied().unwrap_or(0);
        bucket_line(self, "+Inf", cumulative);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Label values escape the backslash, the double quote and the line break.
fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslashes_quotes_and_line_breaks() {
        let mut text = TextWriter::default();
        text.sample("m", &[("a", "x\\y\"z\nw"), ("b", "{id}")], 3);
        assert_eq!(text.finish(), "m{a=\"x\\\\y\\\"z\\nw\",b=\"{id}\"} 3\n");
    }

    #[test]
    fn a_sample_without_labels_has_no_braces() {
        let mut text = TextWriter::default();
        text.sample("up", &[], 1);
        assert_eq!(text.finish(), "up 1\n");
    }

    #[test]
    fn families_announce_help_and_type_with_help_escaped() {
        let mut text = TextWriter::default();
        text.family("m_total", "counter", "a \\ b\nc");
        assert_eq!(
            text.finish(),
            "# HELP m_total a \\\\ b\\nc\n# TYPE m_total counter\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf_sum_and_count() {
        let mut text = TextWriter::default();
        text.histogram(
            "d",
            &[("path", "/p")],
            &[0.001, 0.5, 2.0],
            &[2, 0, 3, 1],
            4.25,
        );
        assert_eq!(
            text.finish(),
            "d_bucket{path=\"/p\",le=\"0.001\"} 2\n\
             d_bucket{path=\"/p\",le=\"0.5\"} 2\n\
             d_bucket{path=\"/p\",le=\"2\"} 5\n\
             d_bucket{path=\"/p\",le=\"+Inf\"} 6\n\
             d_sum{path=\"/p\"} 4.25\n\
             d_count{path=\"/p\"} 6\n"
        );
    }
}
