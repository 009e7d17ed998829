//! The Prometheus text exposition format, version 0.0.4: `# HELP` and
//! `# TYPE` lines, then one line per sample, `name{label="value"} number`.
//!
//! Written by hand: the format is a few rules (escaping `\`, `"` and line
//! feeds in label values, `\` and line feeds in help text; `+Inf` for the
//! last bucket), and the numbers come from the server's own cells (see the
//! module docs of [`super`] for why not a crate's registry).

use std::fmt::Write;

use super::cell::Snapshot;

/// The media type of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a metric family is.
#[derive(Debug, Clone, Copy)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// An exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts the family `name`: its help and type lines. Its samples
    /// follow.
    pub fn family(&mut self, name: &str, kind: Type, help: &str) {
        let kind = match kind {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        };
        let _ = write!(self.out, "# HELP {name} ");
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {name} {kind}");
    }

    /// One sample with an integer value.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.name_and_labels(name, labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// One sample with a real value.
    pub fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.name_and_labels(name, labels, None);
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// The samples of a histogram: its cumulative buckets, sum and count.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Snapshot) {
        let bucket = format!("{name}_bucket");
        for (bound, count) in h.cumulative() {
            let le = bound.map_or_else(|| "+Inf".to_string(), number);
            self.name_and_labels(&bucket, labels, Some(&le));
            let _ = writeln!(self.out, " {count}");
        }
        self.sample_f64(&format!("{name}_sum"), labels, h.sum());
        self.sample(&format!("{name}_count"), labels, h.count());
    }

    fn name_and_labels(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>) {
        self.out.push_str(name);
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// The text written.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A real number as the format writes it: integers without a fraction,
/// others in the shortest form that reads back the same.
fn number(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v.is_nan() {
        return "NaN".into();
    }
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::cell::{Histogram, SHORT_SECONDS};

    #[test]
    fn families_samples_and_escapes() {
        let mut e = Exposition::default();
        e.family("sl_x_total", Type::Counter, "Things.\nMore \\ things.");
        e.sample("sl_x_total", &[("action", "a\"b\\c\nd"), ("kind", "async")], 3);
        e.sample("sl_y", &[], 0);
        e.sample_f64("sl_z", &[], 0.25);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP sl_x_total Things.\\nMore \\\\ things.\n# TYPE sl_x_total counter\n\
             sl_x_total{action=\"a\\\"b\\\\c\\nd\",kind=\"async\"} 3\nsl_y 0\nsl_z 0.25\n"
        );
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_a_sum_and_a_count() {
        let h = Histogram::<{ crate::metrics::cell::SHORT_SECONDS_COUNTS }>::new(&SHORT_SECONDS);
        h.record(20_000);
        h.record(2_000_000_000);
        let mut s = Snapshot::default();
        h.add_to(&mut s);
        let mut e = Exposition::default();
        e.histogram("sl_t_seconds", &[("worker", "0")], &s);
        let text = e.finish();
        assert!(text.starts_with("sl_t_seconds_bucket{worker=\"0\",le=\"0.00001\"} 0\n"), "{text}");
        assert!(text.contains("sl_t_seconds_bucket{worker=\"0\",le=\"0.000025\"} 1\n"), "{text}");
        assert!(text.contains("sl_t_seconds_bucket{worker=\"0\",le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("sl_t_seconds_bucket{worker=\"0\",le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("sl_t_seconds_sum{worker=\"0\"} 2.00002\n"), "{text}");
        assert!(text.ends_with("sl_t_seconds_count{worker=\"0\"} 2\n"), "{text}");
    }
}
